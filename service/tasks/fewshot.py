"""Few-shot prompting: one pretrained causal LM does sentiment, extractive QA and EN↔ZH translation without retraining.

Each task builds a compact prompt (an instruction, a few bilingual demonstrations, the query), runs the model and
returns a FewShotOutcome: the exact prompt, the model's completion, a JSON-ready prediction and named character
segments into `prompt + completion`. Works with any causal LM + tokenizer (a tiny random one gives garbage, but valid
output). With capture_attention (the default) the outcome also carries the attention the model computed on the way
(`FewShotOutcome.attention`): the eager kernel is switched on for the call, so hold the model's lock.
The model calls themselves live in service/tasks/lm_calls.py; the only state kept between calls is the sentiment
calibration of each (model, tokenizer, demonstration set), held weakly there.

    sentiment     compare next-token log-probabilities of " positive" / " negative", with contextual calibration
                  (Zhao et al. 2021: divide by the label probabilities the prompt gives a content-free input).
                  One forward per request: the calibration probe depends only on the fixed prompt and is computed
                  once; the labels ride along the query as sibling branches (one tree-masked forward).
    qa            greedy answer, snapped to the best-matching span of the context: the answer is context[start:end]
    translation   greedy continuation of "English: … / Chinese: …" pairs, stopped at the newline
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from service.attention.capture import CapturedRows
from service import limits
from service.tasks.lm_calls import (SENTIMENT_LABELS, ContextSpanConstraint, calibration, generate_line, kernel_for,
                                    score_labels, token_count)
from service.text import Direction

MAX_NEW_TOKENS_CAP = 120
QA_MAX_ANSWER_TOKENS = 40


@dataclass
class FewShotOutcome:
    """What one few-shot call produced.

    segments: (name, char_start, char_end, role) into `prompt + completion`, tiling it in order:
    "instruction", "demonstration 1", …, then the query: the user's own text ("text"; "context" and "question";
    "source") between pieces of the task's "format" ("Review: ", "\nSentiment:"), then "answer" (the completion).
    role: "scaffold" (instruction, demonstrations, format), "input" (the user's text) or "output" (the answer).
    attention: what the model computed while producing the completion (None unless capture_attention):
    rows over `attention.token_ids` = the prompt's ids + the completion's generated ids.
    """

    prompt: str
    completion: str
    prediction: dict[str, Any]
    segments: list[tuple[str, int, int, str]] = field(default_factory=list)
    attention: CapturedRows | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        return self.prompt + self.completion


# --- demonstrations -----------------------------------------------------------------------------------------
# Written for this project; the evaluation set in eval/ uses different sentences.

SENTIMENT_INSTRUCTION = "Classify each review as positive or negative.\n\n"
SENTIMENT_DEMONSTRATIONS = (
    ("The soup was cold and the waiter ignored us all evening.", "negative"),
    ("这家店的蛋糕很好吃，服务也很周到。", "positive"),
    ("I loved every minute of this film, the actors were brilliant.", "positive"),
    ("手机用了两天就坏了，太失望了。", "negative"),
)

QA_INSTRUCTION = "Answer each question with a short phrase copied from the text.\n\n"
QA_DEMONSTRATIONS = (
    ("The Great Wall of China is more than 21,000 kilometres long. Most of the wall we see today was built "
     "during the Ming dynasty.", "When was most of the wall built?", "during the Ming dynasty"),
    ("李华在北京大学学习化学，毕业后去了上海的一家医院工作。", "李华毕业后在哪里工作？", "上海的一家医院"),
    ("Marie Curie was born in Warsaw in 1867 and later moved to Paris to study physics.",
     "Where was Marie Curie born?", "Warsaw"),
)

TRANSLATION_INSTRUCTION = {
    "en-zh": "Translate English to Chinese.\n\n",
    "zh-en": "Translate Chinese to English.\n\n",
}
TRANSLATION_PAIRS = (  # (English, Chinese)
    ("The weather is nice today, so we are going to the park.", "今天天气很好，所以我们要去公园。"),
    ("My brother works at a hospital in Shanghai.", "我哥哥在上海的一家医院工作。"),
    ("Please turn off the lights before you leave.", "离开之前请把灯关掉。"),
)
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}


# --- public task functions --------------------------------------------------------------------------------

def classify_fewshot(model: Any, tokenizer: Any, text: str, capture_attention: bool = True,
                     demonstrations: Sequence[tuple[str, str]] | None = None) -> FewShotOutcome:
    """Positive / negative with a calibrated score in [0, 1] (probability of the chosen label).

    demonstrations: (review, label) pairs shown before the query; None = SENTIMENT_DEMONSTRATIONS, () = zero-shot.
    One forward per request (the content-free calibration is computed once per model, tokenizer and prompt prefix).
    """
    builder = _PromptBuilder()
    builder.add("instruction", SENTIMENT_INSTRUCTION)
    chosen = SENTIMENT_DEMONSTRATIONS if demonstrations is None else demonstrations
    for index, (review, label) in enumerate(chosen, start=1):
        builder.add(f"demonstration {index}", _sentiment_block(review, label) + "\n")
    query_prefix = builder.text
    builder.add_fields(("format", "Review: "), ("text", _one_line(text)), ("format", "\nSentiment:"))
    prompt = builder.text
    capture_attention = capture_attention and captures_while_running(tokenizer, prompt)

    with kernel_for(model, capture_attention):
        content_free = calibration(model, tokenizer, query_prefix, lambda probe: _sentiment_block(probe, None))
        scored = score_labels(model, tokenizer, prompt, SENTIMENT_LABELS, capture_attention,  # (labels,) each
                              prefix_text=query_prefix)
    calibrated = torch.softmax(scored.logprobs - content_free, dim=0)                       # (labels,)
    best = int(torch.argmax(calibrated))
    label = SENTIMENT_LABELS[best]
    prediction = {"label": label, "score": float(calibrated[best])}
    outcome = builder.finish(" " + label, prediction)
    outcome.attention = scored.rows_for(best) if capture_attention else None
    return outcome


def answer_fewshot(
    model: Any, tokenizer: Any, context: str, question: str, capture_attention: bool = True,
    demonstrations: Sequence[tuple[str, str, str]] | None = None, anchors: int | None = None,
) -> FewShotOutcome:
    """Extractive QA: generate an answer, then snap it to the best-matching span so context[start:end] == answer.

    demonstrations: (context, question, answer) triples; None = QA_DEMONSTRATIONS, () = zero-shot.
    anchors: how many leading demonstrations every input shares (None = all): the prompt up to them runs once per
    model (the prefix cache), the demonstrations after them, chosen for this input, once per set (the prefix cache
    again, after the shared ones), so a request costs only its own text and question.
    """
    builder = _PromptBuilder()
    builder.add("instruction", QA_INSTRUCTION)
    chosen = QA_DEMONSTRATIONS if demonstrations is None else demonstrations
    shared = builder.text
    for index, (demo_context, demo_question, demo_answer) in enumerate(chosen, start=1):
        builder.add(f"demonstration {index}", _qa_block(demo_context, demo_question, demo_answer) + "\n")
        if anchors is not None and index == anchors:
            shared = builder.text
    demonstrations_text = builder.text                 # the instruction and every demonstration (cached per set)
    query_prefix = demonstrations_text if anchors is None else shared
    builder.add_fields(("format", "Text: "), ("context", _one_line(context)), ("format", "\nQuestion: "),
                       ("question", _one_line(question)), ("format", "\nAnswer:"))
    prompt = builder.text
    capture_attention = capture_attention and captures_while_running(tokenizer, prompt)

    limit = min(token_count(tokenizer, context) + 1, QA_MAX_ANSWER_TOKENS)
    only_spans = ContextSpanConstraint(tokenizer, _one_line(context), len(tokenizer(prompt).input_ids))
    line = generate_line(model, tokenizer, prompt, limit, only_spans, capture_attention, prefix_text=query_prefix,
                         request_prefix_text=demonstrations_text if demonstrations_text != query_prefix else None)
    completion, token_logprobs = line.text, line.logprobs
    start, end = snap_to_span(context, completion)
    start, end = trim_restated_question(context, question, start, end)
    score = math.exp(sum(token_logprobs) / len(token_logprobs)) if token_logprobs else 0.0
    prediction = {"answer": context[start:end], "start": start, "end": end, "score": float(score)}
    outcome = builder.finish(completion, prediction)
    outcome.attention = line.attention
    return outcome


def translate_fewshot(
    model: Any, tokenizer: Any, text: str, direction: Direction, capture_attention: bool = True,
    demonstrations: Sequence[tuple[str, str]] | None = None,
) -> FewShotOutcome:
    """Translate English → Chinese ("en-zh") or Chinese → English ("zh-en").

    demonstrations: (English, Chinese) pairs; None = TRANSLATION_PAIRS, () = zero-shot.
    """
    if direction not in TRANSLATION_INSTRUCTION:
        raise ValueError(f"direction must be 'en-zh' or 'zh-en', got {direction!r}")
    source, target = direction.split("-")
    builder = _PromptBuilder()
    builder.add("instruction", TRANSLATION_INSTRUCTION[direction])
    chosen = TRANSLATION_PAIRS if demonstrations is None else demonstrations
    for index, pair in enumerate(chosen, start=1):
        texts = {"en": pair[0], "zh": pair[1]}
        builder.add(f"demonstration {index}", _translation_block(source, texts[source], target, texts[target]) + "\n")
    query_prefix = builder.text
    builder.add_fields(("format", f"{LANGUAGE_NAMES[source]}: "), ("source", _one_line(text)),
                       ("format", f"\n{LANGUAGE_NAMES[target]}:"))
    prompt = builder.text
    capture_attention = capture_attention and captures_while_running(tokenizer, prompt)

    limit = min(2 * token_count(tokenizer, text) + 10, MAX_NEW_TOKENS_CAP)
    line = generate_line(model, tokenizer, prompt, limit, None, capture_attention, prefix_text=query_prefix)
    outcome = builder.finish(line.text, {"translation": line.text.strip(), "direction": direction})
    outcome.attention = line.attention
    return outcome


def captures_while_running(tokenizer: Any, prompt: str) -> bool:
    """Whether the prompt's attention is captured while the model runs (whole matrices, eager kernel). A longer
    prompt runs on the fast kernel; its result keeps queries and keys instead (service/attention/on_demand.py)."""
    return token_count(tokenizer, prompt) <= limits.WHOLE_MATRIX_TOKENS


# --- prompt pieces -----------------------------------------------------------------------------------------

def _sentiment_block(review: str, label: str | None) -> str:
    head = f"Review: {_one_line(review)}\nSentiment:"
    return head if label is None else f"{head} {label}\n"


def _qa_block(context: str, question: str, answer: str | None) -> str:
    head = f"Text: {_one_line(context)}\nQuestion: {_one_line(question)}\nAnswer:"
    return head if answer is None else f"{head} {answer}\n"


def _translation_block(source: str, source_text: str, target: str, target_text: str | None) -> str:
    head = f"{LANGUAGE_NAMES[source]}: {_one_line(source_text)}\n{LANGUAGE_NAMES[target]}:"
    return head if target_text is None else f"{head} {target_text}\n"


def _one_line(text: str) -> str:
    """Newlines end an answer, so user text inside a prompt is kept on one line."""
    return " ".join(text.split())


class _PromptBuilder:
    """Concatenates named pieces and remembers their character spans and roles: the only source of segment
    boundaries (never a string search in decoded tokens, which a demonstration repeating the input would fool)."""

    def __init__(self) -> None:
        self.text = ""
        self.segments: list[tuple[str, int, int, str]] = []

    def add(self, name: str, piece: str, role: str = "scaffold") -> None:
        if piece:
            self.segments.append((name, len(self.text), len(self.text) + len(piece), role))
        self.text += piece

    def add_fields(self, *pieces: tuple[str, str]) -> None:
        """The query: "format" pieces are scaffold, every other named piece is the user's input."""
        for name, piece in pieces:
            self.add(name, piece, "scaffold" if name == "format" else "input")

    def finish(self, completion: str, prediction: dict[str, Any]) -> FewShotOutcome:
        segments = list(self.segments)
        segments.append(("answer", len(self.text), len(self.text) + len(completion), "output"))
        return FewShotOutcome(prompt=self.text, completion=completion, prediction=prediction, segments=segments)


# --- span snapping ----------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,'’\-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")
_EDGE_PUNCTUATION = " \t\"'“”‘’.,;:!?。，；：！？、()（）《》「」"


def snap_to_span(context: str, answer: str) -> tuple[int, int]:
    """Character offsets (start, end) of the span of `context` that best matches `answer`.

    Exact (case-insensitive) occurrence first; else the span of whole words (single characters for CJK) with the
    highest unit-level F1 against the answer, preferring shorter spans. Always a valid span of `context`.
    """
    cleaned = answer.strip().strip(_EDGE_PUNCTUATION)
    if not context:
        return 0, 0
    if cleaned:
        found = context.lower().find(cleaned.lower())
        if found >= 0:
            return found, found + len(cleaned)
    units = [(match.start(), match.end(), _normalise(match.group())) for match in _WORD.finditer(context)]
    units = [unit for unit in units if unit[2]]
    answer_units = [_normalise(match.group()) for match in _WORD.finditer(cleaned)]
    answer_units = [unit for unit in answer_units if unit and unit not in _EDGE_PUNCTUATION]
    if not units:
        return 0, len(context)
    if not answer_units:
        return units[0][0], units[0][1]
    answer_counts = _counts(answer_units)
    best = (-1.0, 0, 0)
    max_len = len(answer_units) + 4
    for i in range(len(units)):
        for j in range(i, min(len(units), i + max_len)):
            span_counts = _counts([unit[2] for unit in units[i:j + 1]])
            overlap = sum(min(count, answer_counts.get(unit, 0)) for unit, count in span_counts.items())
            if overlap == 0:
                continue
            precision = overlap / (j - i + 1)
            recall = overlap / len(answer_units)
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best[0] + 1e-9:
                best = (f1, i, j)
    if best[0] < 0:
        return units[0][0], units[0][1]
    _, i, j = best
    start, end = units[i][0], units[j][1]
    return start, end


def trim_restated_question(context: str, question: str, start: int, end: int) -> tuple[int, int]:
    """Drop leading words (CJK: characters) of the span that merely repeat the question, if something else remains.

    "熊猫最喜欢吃什么？" answered "喜欢吃竹子" becomes "竹子": the known weak spot of restating the question.
    """
    question_units = {_normalise(match.group()) for match in _WORD.finditer(question)}
    units = [match for match in _WORD.finditer(context, start, end)]
    units = [match for match in units if _normalise(match.group()) not in _EDGE_PUNCTUATION]
    kept = 0
    while kept < len(units) and _normalise(units[kept].group()) in question_units:
        kept += 1
    if kept == 0 or kept == len(units):            # nothing restated, or only restated words: leave it whole
        return start, end
    return units[kept].start(), end


def _normalise(unit: str) -> str:
    return unicodedata.normalize("NFKC", unit).lower()


def _counts(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts
