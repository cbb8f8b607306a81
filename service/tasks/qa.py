"""Extractive QA on an encoder (DistilBERT SQuAD): the best answer span of the context, with character offsets.

preprocess (question + context, truncated to the budget) → forward (start/end logits, attention in the same eager
pass) → postprocess (best span start ≤ end inside the context; segments question / context, the answer span cut out of
the context as role output).
"""

from __future__ import annotations

import time

import numpy as np

from service.attention import capture
from service.errors import InvalidInputError
from service.models.loading import LoadedModel
from service.result import AttentionResult, Segment
from service.tasks.common import as_tensor, build_result, sequence_segments, token_budget

MAX_ANSWER_TOKENS = 30


def run_qa(loaded: LoadedModel, context: str, question: str, max_attention_tokens: int) -> AttentionResult:
    """Best answer span of `context` for `question`, with character offsets into the original context."""
    tokenizer = loaded.tokenizer
    started = time.perf_counter()
    budget = token_budget(loaded, max_attention_tokens)
    full_length = len(tokenizer(question, context)["input_ids"])
    question_length = len(tokenizer(question)["input_ids"])
    if question_length + 2 > budget:  # [CLS] question [SEP], one context token and [SEP] must fit
        raise InvalidInputError(
            f"The question is {question_length} tokens, which leaves no room for the context within "
            f"{budget} tokens. Shorten the question."
        )
    encoding = tokenizer(
        question, context, truncation="only_second", max_length=budget, return_offsets_mapping=True
    )
    ids = encoding["input_ids"]
    offsets = encoding["offset_mapping"]
    sequence_ids = encoding.sequence_ids(0)
    inputs = {"input_ids": as_tensor(ids, loaded.device)}  # (1, S)
    inputs["attention_mask"] = inputs["input_ids"].new_ones(inputs["input_ids"].shape)
    outputs, attention = capture.encoder_forward(loaded.model, inputs)  # attention: (layer, head, S, S)
    forwarded_at = time.perf_counter()
    start_logits = outputs.start_logits[0].float().cpu().numpy()  # (S,)
    end_logits = outputs.end_logits[0].float().cpu().numpy()  # (S,)
    context_mask = np.array([sid == 1 for sid in sequence_ids])
    start, end, score = best_span(start_logits, end_logits, context_mask, MAX_ANSWER_TOKENS)
    char_start, char_end = int(offsets[start][0]), int(offsets[end][1])
    prediction = {
        "answer": context[char_start:char_end],
        "start": char_start,
        "end": char_end,
        "score": score,
    }
    segments = split_around_answer(sequence_segments(sequence_ids, {0: "question", 1: "context"}), start, end + 1)
    notices = [capture.truncation_notice(len(ids))] if full_length > len(ids) else []
    return build_result(
        loaded, "qa", "encoder", prediction, encoder=(ids, attention), segments=segments, notices=notices,
        timings={"model": forwarded_at - started, "capture": time.perf_counter() - forwarded_at},
    )


def best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, allowed: np.ndarray, max_tokens: int
) -> tuple[int, int, float]:
    """(start, end, probability) of the best span start ≤ end < start + max_tokens inside `allowed` tokens.

    Probabilities are softmaxes over the allowed positions; the score is P(start) · P(end), in [0, 1].
    """
    if not allowed.any():
        raise InvalidInputError("The context has no tokens left to answer from. Give a longer context.")
    start_probs = _masked_softmax(start_logits, allowed)  # (S,)
    end_probs = _masked_softmax(end_logits, allowed)  # (S,)
    pair = np.outer(start_probs, end_probs)  # (start_pos, end_pos)
    pair = np.triu(pair) - np.triu(pair, k=max_tokens)  # keep start ≤ end < start + max_tokens
    start, end = np.unravel_index(int(np.argmax(pair)), pair.shape)
    return int(start), int(end), float(pair[start, end])


def _masked_softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    masked = np.where(allowed, logits.astype(np.float64), -np.inf)
    masked = masked - masked[allowed].max()
    weights = np.where(allowed, np.exp(masked), 0.0)
    return weights / weights.sum()


def split_around_answer(segments: list[Segment], start: int, end: int) -> list[Segment]:
    """The context segment cut into context / answer (tokens start..end-1, role output) / context."""
    pieces = []
    for segment in segments:
        if segment.name != "context" or not (segment.start <= start < end <= segment.end):
            pieces.append(segment)
            continue
        pieces += [Segment("context", segment.start, start, "encoder"), Segment("answer", start, end, "encoder", "output"),
                   Segment("context", end, segment.end, "encoder")]
    return [piece for piece in pieces if piece.end > piece.start]
