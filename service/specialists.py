"""Task runners: preprocess → forward (+ attention capture) → postprocess, for each model family.

generation: any causal LM (GPT-2, Gemma)       → decoder result, segments prompt / generated
qa:         extractive QA encoder (DistilBERT)  → encoder result, segments question / context
sentiment:  sequence classifier (DistilBERT)    → encoder result, segment text
translation: Marian encoder-decoder             → encoder, decoder and cross-attention
fewshot:    a few-shot outcome of a causal LM   → decoder result over prompt + completion
Every runner must be called with the model's lock held (ModelService does this).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from service import capture, limits
from service.errors import InvalidInputError
from service.loading import LoadedModel
from service.result import AttentionResult, Segment, TaskName
from service.tokens import display_tokens

# torch's global RNG is shared by all threads: sampling requests hold this lock from seeding to the last token.
_SAMPLING_RNG_LOCK = threading.Lock()
MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = limits.DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    min_new_tokens: int = 0

    @property
    def sampling(self) -> bool:
        return self.temperature > 0


def max_positions(config: Any) -> int | None:
    """Longest sequence the model's position embeddings allow (None when unbounded / unknown)."""
    text_config = getattr(config, "get_text_config", lambda: config)()
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(text_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _model_facts(loaded: LoadedModel, num_layers: int) -> dict[str, Any]:
    config = loaded.model.config
    return {
        "layer_types": capture.layer_types_of(config, num_layers),
        "num_key_value_heads": capture.key_value_heads_of(config),
    }


def _as_tensor(ids: list[int], device: str) -> Any:
    import torch

    return torch.tensor([ids], dtype=torch.long, device=device)  # (batch=1, seq)


# --- generation -----------------------------------------------------------------------------------
def run_generation(
    loaded: LoadedModel,
    prompt: str,
    settings: GenerationSettings,
    max_attention_tokens: int,
    on_token: Callable[[list[int]], None] | None = None,
    stop_event: threading.Event | None = None,
    finish_event: threading.Event | None = None,
) -> AttentionResult | None:
    """Generate a continuation with sdpa, then capture attention over prompt + continuation in one eager pass.

    `on_token(new_ids)` is called with all generated ids so far after each step. Generation stops within one token
    once `stop_event` is set, and then no result is built (returns None); once `finish_event` is set it also stops,
    but the result is built for the text so far, with a notice.
    """
    import torch
    from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    tokenizer, model = loaded.tokenizer, loaded.model
    started = time.perf_counter()
    prompt_ids = tokenizer(prompt)["input_ids"]
    limit = max_positions(model.config)
    if limit is not None and len(prompt_ids) + settings.max_new_tokens > limit:
        raise InvalidInputError(
            f"The prompt is {len(prompt_ids)} tokens; {loaded.name} reads at most {limit} tokens including the "
            f"{settings.max_new_tokens} new ones. Shorten the prompt or ask for fewer new tokens."
        )

    class StopWhenSet(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = any(event is not None and event.is_set() for event in (stop_event, finish_event))
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    class TokenCallback(BaseStreamer):
        def __init__(self) -> None:
            self.generated: list[int] = []
            self.seen_prompt = False

        def put(self, value: Any) -> None:
            if not self.seen_prompt:  # generate() first puts the prompt
                self.seen_prompt = True
                return
            self.generated.extend(int(token) for token in value.reshape(-1).tolist())
            if on_token is not None:
                on_token(list(self.generated))

        def end(self) -> None:
            pass

    eos = model.generation_config.eos_token_id
    pad = model.generation_config.pad_token_id
    if pad is None:
        pad = eos[0] if isinstance(eos, list) else eos
    config_args: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "min_new_tokens": settings.min_new_tokens or None,
        "do_sample": settings.sampling,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "bos_token_id": model.generation_config.bos_token_id,
        "num_beams": 1,
    }
    if settings.sampling:
        config_args.update(temperature=settings.temperature, top_k=settings.top_k or None, top_p=settings.top_p)
    generation_config = GenerationConfig(**config_args)
    input_ids = _as_tensor(prompt_ids, loaded.device)  # (1, prompt_len)
    generate_args = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "generation_config": generation_config,
        "stopping_criteria": StoppingCriteriaList([StopWhenSet()]),
        "streamer": TokenCallback() if on_token is not None else None,
    }
    if settings.sampling:
        with _SAMPLING_RNG_LOCK:
            torch.manual_seed(settings.seed)
            output = model.generate(**generate_args)
    else:
        output = model.generate(**generate_args)
    generated_at = time.perf_counter()
    if stop_event is not None and stop_event.is_set():
        return None

    sequence = output[0].tolist()  # prompt + generated ids
    continuation_ids = sequence[len(prompt_ids):]
    text = tokenizer.decode(continuation_ids, skip_special_tokens=True)
    segments = [Segment("prompt", 0, len(prompt_ids)), Segment("generated", len(prompt_ids), len(sequence))]
    result = decoder_result(
        loaded, "generation", sequence, segments, max_attention_tokens, prediction={"text": text}, prompt=prompt
    )
    result.timings = {"model": generated_at - started, "capture": time.perf_counter() - generated_at}
    if finish_event is not None and finish_event.is_set() and len(continuation_ids) < settings.max_new_tokens:
        result.notices.append(f"Stopped on request after {len(continuation_ids)} of {settings.max_new_tokens} new "
                              "tokens; the attention shown is for the text written so far.")
    return result


def decoder_result(
    loaded: LoadedModel,
    task: TaskName,
    sequence: list[int],
    segments: list[Segment],
    max_attention_tokens: int,
    prediction: dict[str, Any],
    prompt: str | None,
    captured: capture.CapturedRows | None = None,
) -> AttentionResult:
    """Wrap a causal LM's attention over `sequence`; keeps the last N positions over the cap.

    The attention comes from `captured` (rows the model computed while running) when it covers `sequence`,
    else from one eager pass over `sequence`.
    """
    total = len(sequence)
    shown = min(total, max_attention_tokens)
    notices = []
    if captured is not None and captured.covers(sequence):
        attention = capture.captured_attention(loaded.model, captured, total, keep_last=shown)  # (layer, head, N, N)
    else:
        attention = capture.decoder_attention(loaded.model, _as_tensor(sequence, loaded.device), keep_last=shown)
    tokens, special = display_tokens(loaded.tokenizer, sequence)
    if shown < total:
        notices.append(capture.window_notice(shown, total))
        tokens, special = tokens[total - shown :], special[total - shown :]
        segments = capture.shift_segments(segments, total - shown, shown)
    return AttentionResult(
        task=task,
        model_name=loaded.name,
        architecture="decoder",
        prediction=prediction,
        decoder_tokens=tokens,
        decoder_attention=attention,
        decoder_special=special,
        segments=segments,
        prompt=prompt,
        notices=notices,
        **_model_facts(loaded, attention.shape[0]),
    )


# --- extractive QA --------------------------------------------------------------------------------
def run_qa(loaded: LoadedModel, context: str, question: str, max_attention_tokens: int) -> AttentionResult:
    """Best answer span of `context` for `question`, with character offsets into the original context."""
    tokenizer = loaded.tokenizer
    started = time.perf_counter()
    budget = _token_budget(loaded, max_attention_tokens)
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
    inputs = {"input_ids": _as_tensor(ids, loaded.device)}  # (1, S)
    inputs["attention_mask"] = inputs["input_ids"].new_ones(inputs["input_ids"].shape)
    outputs, attention = capture.encoder_forward(loaded.model, inputs)
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
    segments = _sequence_segments(sequence_ids, {0: "question", 1: "context"})
    tokens, special = display_tokens(tokenizer, ids)
    notices = [capture.truncation_notice(len(ids))] if full_length > len(ids) else []
    return AttentionResult(
        task="qa",
        model_name=loaded.name,
        architecture="encoder",
        prediction=prediction,
        encoder_tokens=tokens,
        encoder_attention=attention,
        encoder_special=special,
        segments=segments,
        prompt=None,
        notices=notices,
        timings={"model": time.perf_counter() - started},
        **_model_facts(loaded, attention.shape[0]),
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


def _sequence_segments(sequence_ids: list[int | None], names: dict[int, str], side: str = "encoder") -> list[Segment]:
    """Contiguous token spans of each input sequence (special tokens, with sequence id None, excluded)."""
    segments = []
    for sequence_id, name in names.items():
        positions = [index for index, sid in enumerate(sequence_ids) if sid == sequence_id]
        if positions:
            segments.append(Segment(name, positions[0], positions[-1] + 1, side))  # type: ignore[arg-type]
    return segments


def _token_budget(loaded: LoadedModel, max_attention_tokens: int) -> int:
    limit = max_positions(loaded.model.config)
    return min(max_attention_tokens, limit) if limit else max_attention_tokens


# --- sentiment ------------------------------------------------------------------------------------
def run_sentiment(loaded: LoadedModel, text: str, max_attention_tokens: int) -> AttentionResult:
    """Positive/negative label of `text` with its probability."""
    tokenizer = loaded.tokenizer
    started = time.perf_counter()
    budget = _token_budget(loaded, max_attention_tokens)
    full_length = len(tokenizer(text)["input_ids"])
    encoding = tokenizer(text, truncation=True, max_length=budget)
    ids = encoding["input_ids"]
    inputs = {"input_ids": _as_tensor(ids, loaded.device)}  # (1, S)
    inputs["attention_mask"] = inputs["input_ids"].new_ones(inputs["input_ids"].shape)
    outputs, attention = capture.encoder_forward(loaded.model, inputs)
    logits = outputs.logits[0].float().cpu().numpy().astype(np.float64)  # (labels,)
    probs = np.exp(logits - logits.max())
    probs = probs / probs.sum()
    labels = [_sentiment_label(loaded.model.config, index, len(probs)) for index in range(len(probs))]
    best = int(np.argmax(probs))
    prediction = {
        "label": labels[best],
        "score": float(probs[best]),
        "scores": {label: float(prob) for label, prob in zip(labels, probs)},
    }
    tokens, special = display_tokens(tokenizer, ids)
    sequence_ids = encoding.sequence_ids(0) if hasattr(encoding, "sequence_ids") else [0] * len(ids)
    notices = [capture.truncation_notice(len(ids))] if full_length > len(ids) else []
    return AttentionResult(
        task="sentiment",
        model_name=loaded.name,
        architecture="encoder",
        prediction=prediction,
        encoder_tokens=tokens,
        encoder_attention=attention,
        encoder_special=special,
        segments=_sequence_segments(sequence_ids, {0: "text"}),
        notices=notices,
        timings={"model": time.perf_counter() - started},
        **_model_facts(loaded, attention.shape[0]),
    )


def _sentiment_label(config: Any, index: int, count: int) -> str:
    name = str(getattr(config, "id2label", {}).get(index, "")).lower()
    if "pos" in name:
        return "positive"
    if "neg" in name:
        return "negative"
    if count == 2:  # LABEL_0 / LABEL_1 of binary sentiment models: 0 = negative
        return "positive" if index == 1 else "negative"
    return name or f"label {index}"


# --- translation ----------------------------------------------------------------------------------
def detect_direction(text: str) -> str:
    """'zh-en' when CJK characters make up at least half of the text's characters and words, else 'en-zh'."""
    cjk = sum(1 for char in text if "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff")
    latin_words = 0
    in_word = False
    for char in text:
        is_latin = char.isascii() and char.isalpha()
        if is_latin and not in_word:
            latin_words += 1
        in_word = is_latin
    if cjk == 0:
        return "en-zh"
    return "zh-en" if cjk >= latin_words else "en-zh"


def run_translation(
    loaded: LoadedModel, text: str, direction: str, max_attention_tokens: int, source_prefix: str = ""
) -> AttentionResult:
    """Translate with a Marian model; capture encoder, decoder and cross-attention over source and output."""
    tokenizer, model = loaded.tokenizer, loaded.model
    started = time.perf_counter()
    budget = _token_budget(loaded, max_attention_tokens)
    source = source_prefix + text
    full_length = len(tokenizer(source)["input_ids"])
    ids = tokenizer(source, truncation=True, max_length=budget)["input_ids"]
    input_ids = _as_tensor(ids, loaded.device)  # (1, S)
    attention_mask = input_ids.new_ones(input_ids.shape)  # (1, S)
    # decoder start token + output ≤ budget; a translation longer than twice its source (+16) is runaway output
    max_new_tokens = max(1, min(limits.MAX_TRANSLATION_TOKENS, budget - 1, 2 * len(ids) + 16))
    output = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens)
    generated_at = time.perf_counter()
    target = output[0].tolist()  # decoder start token + translation (+ </s>)
    attention = capture.seq2seq_attention(model, input_ids, attention_mask, _as_tensor(target, loaded.device))
    translation = tokenizer.decode(target, skip_special_tokens=True).strip()
    encoder_tokens, encoder_special = display_tokens(tokenizer, ids)
    decoder_tokens, decoder_special = display_tokens(tokenizer, target)
    notices = []
    if full_length > len(ids):
        notices.append(capture.truncation_notice(len(ids)))
    if len(target) - 1 >= max_new_tokens:
        notices.append(f"Translation stopped at {max_new_tokens} tokens.")
    prefix_tokens = len(tokenizer(source_prefix, add_special_tokens=False)["input_ids"]) if source_prefix else 0
    text_end = len(ids) - 1 if ids and ids[-1] in set(getattr(tokenizer, "all_special_ids", [])) else len(ids)
    segments = [Segment("source", min(prefix_tokens, text_end), text_end, "encoder"), Segment("translation", 1, len(target))]
    return AttentionResult(
        task="translation",
        model_name=loaded.name,
        architecture="encoder-decoder",
        prediction={"translation": translation, "direction": direction},
        encoder_tokens=encoder_tokens,
        decoder_tokens=decoder_tokens,
        encoder_attention=attention.encoder,
        decoder_attention=attention.decoder,
        cross_attention=attention.cross,
        encoder_special=encoder_special,
        decoder_special=decoder_special,
        segments=[segment for segment in segments if segment.end > segment.start],
        prompt=source,
        notices=notices,
        timings={"model": generated_at - started, "capture": time.perf_counter() - generated_at},
        **_model_facts(loaded, attention.decoder.shape[0]),
    )


# --- few-shot outcomes ----------------------------------------------------------------------------
def fewshot_result(loaded: LoadedModel, task: TaskName, outcome: Any, max_attention_tokens: int) -> AttentionResult:
    """Turn a FewShotOutcome (prompt, completion, prediction, char segments) into a decoder AttentionResult.

    The attention is over the re-tokenised prompt + completion. When those are the very tokens the model ran on
    (the usual case), the rows it computed while running are reused; otherwise one eager pass computes them.
    """
    started = time.perf_counter()
    text = outcome.prompt + outcome.completion
    encoding = loaded.tokenizer(text, return_offsets_mapping=True)  # adds <bos> like generation did
    ids = encoding["input_ids"]
    offsets = [tuple(pair) for pair in encoding["offset_mapping"]]
    segments = char_spans_to_segments(offsets, outcome.segments)
    result = decoder_result(
        loaded, task, ids, segments, max_attention_tokens, prediction=json_ready(outcome.prediction),
        prompt=outcome.prompt, captured=getattr(outcome, "attention", None),
    )
    result.timings = {"capture": time.perf_counter() - started}
    return result


def char_spans_to_segments(
    offsets: list[tuple[int, int]], spans: list[tuple[str, int, int]], side: str = "decoder"
) -> list[Segment]:
    """Token segments covering each (name, char_start, char_end) span; a token belongs where it overlaps."""
    segments = []
    for name, char_start, char_end in spans:
        positions = [
            index for index, (start, end) in enumerate(offsets)
            if end > start and start < char_end and end > char_start
        ]
        if positions:
            segments.append(Segment(name, positions[0], positions[-1] + 1, side))  # type: ignore[arg-type]
    return segments


def json_ready(value: Any) -> Any:
    """Plain Python (dict, list, str, int, float, bool, None) from numpy / torch scalars and containers."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if hasattr(value, "item"):
        return json_ready(value.item())
    return str(value)
