"""Few-shot prompting: one pretrained causal LM does sentiment, extractive QA and EN↔ZH translation without retraining.

Each task builds a compact prompt (an instruction, a few bilingual demonstrations, the query), runs the model and
returns a FewShotOutcome: the exact prompt, the model's completion, a JSON-ready prediction and named character
segments into `prompt + completion`. Works with any causal LM + tokenizer (a tiny random one gives garbage, but valid
output). With capture_attention (the default) the outcome also carries the attention the model computed on the way
(`FewShotOutcome.attention`): the eager kernel is switched on for the call, so hold the model's lock.
The only state kept between calls: the sentiment calibration of each (model, tokenizer), held weakly.

    sentiment     compare next-token log-probabilities of " positive" / " negative", with contextual calibration
                  (Zhao et al. 2021: divide by the label probabilities the prompt gives a content-free input).
                  One forward per request: the calibration probe depends only on the fixed prompt and is computed
                  once; the labels ride along the query as sibling branches (one tree-masked forward).
    qa            greedy answer, snapped to the best-matching span of the context: the answer is context[start:end]
    translation   greedy continuation of "English: … / Chinese: …" pairs, stopped at the newline
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import unicodedata
import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from service.attention.capture import CapturedRows, eager_attention, rows_from_generation
from service.text import Direction

SENTIMENT_LABELS = ("positive", "negative")
CONTENT_FREE_INPUTS = ("N/A",)             # contextual calibration probe(s), averaged
MAX_NEW_TOKENS_CAP = 120
QA_MAX_ANSWER_TOKENS = 40
SPAN_CANDIDATES_PER_STEP = 64               # constrained QA decoding looks this far down the ranking each step


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

    with _kernel_for(model, capture_attention):
        calibration = _calibration(model, tokenizer, query_prefix)                          # (labels,)
        scored = _score_labels(model, tokenizer, prompt, SENTIMENT_LABELS, capture_attention)
    calibrated = torch.softmax(scored.logprobs - calibration, dim=0)                        # (labels,)
    best = int(torch.argmax(calibrated))
    label = SENTIMENT_LABELS[best]
    prediction = {"label": label, "score": float(calibrated[best])}
    outcome = builder.finish(" " + label, prediction)
    outcome.attention = scored.rows_for(best) if capture_attention else None
    return outcome


def answer_fewshot(
    model: Any, tokenizer: Any, context: str, question: str, capture_attention: bool = True,
    demonstrations: Sequence[tuple[str, str, str]] | None = None,
) -> FewShotOutcome:
    """Extractive QA: generate an answer, then snap it to the best-matching span so context[start:end] == answer.

    demonstrations: (context, question, answer) triples; None = QA_DEMONSTRATIONS, () = zero-shot.
    """
    builder = _PromptBuilder()
    builder.add("instruction", QA_INSTRUCTION)
    chosen = QA_DEMONSTRATIONS if demonstrations is None else demonstrations
    for index, (demo_context, demo_question, demo_answer) in enumerate(chosen, start=1):
        builder.add(f"demonstration {index}", _qa_block(demo_context, demo_question, demo_answer) + "\n")
    builder.add_fields(("format", "Text: "), ("context", _one_line(context)), ("format", "\nQuestion: "),
                       ("question", _one_line(question)), ("format", "\nAnswer:"))
    prompt = builder.text

    limit = min(_token_count(tokenizer, context) + 1, QA_MAX_ANSWER_TOKENS)
    only_spans = _ContextSpanConstraint(tokenizer, _one_line(context), len(tokenizer(prompt).input_ids))
    line = _generate_line(model, tokenizer, prompt, limit, only_spans, capture_attention)
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
    builder.add_fields(("format", f"{LANGUAGE_NAMES[source]}: "), ("source", _one_line(text)),
                       ("format", f"\n{LANGUAGE_NAMES[target]}:"))
    prompt = builder.text

    limit = min(2 * _token_count(tokenizer, text) + 10, MAX_NEW_TOKENS_CAP)
    line = _generate_line(model, tokenizer, prompt, limit, None, capture_attention)
    outcome = builder.finish(line.text, {"translation": line.text.strip(), "direction": direction})
    outcome.attention = line.attention
    return outcome


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


# --- model calls --------------------------------------------------------------------------------------------

def _encode(tokenizer: Any, text: str, device: torch.device) -> torch.Tensor:
    return tokenizer(text, return_tensors="pt").input_ids.to(device)                 # (1, tokens)


def _token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def _kernel_for(model: Any, capture_attention: bool) -> Any:
    """The eager kernel while capturing (it returns attention weights), else whatever the model runs on."""
    return eager_attention(model) if capture_attention else contextlib.nullcontext()


# Contextual-calibration log-probabilities per model (weakly held: a dropped model drops its entry), then per
# tokenizer and prompt prefix. The lock makes the check-and-fill atomic when calls come from several threads.
_CALIBRATIONS: "weakref.WeakKeyDictionary[Any, dict[tuple[int, str], tuple[Any, torch.Tensor]]]" = (
    weakref.WeakKeyDictionary()
)
_CALIBRATIONS_LOCK = threading.Lock()


def _calibration(model: Any, tokenizer: Any, query_prefix: str) -> torch.Tensor:
    """Mean label log-probabilities (labels,) after the content-free probes; computed once per model + tokenizer."""
    key = (id(tokenizer), query_prefix)
    with _CALIBRATIONS_LOCK:
        per_model = _CALIBRATIONS.setdefault(model, {})
        cached = per_model.get(key)
        if cached is not None and cached[0]() is tokenizer:
            return cached[1]
        calibration = torch.stack([
            _score_labels(model, tokenizer, query_prefix + _sentiment_block(probe, None), SENTIMENT_LABELS,
                          capture_attention=False).logprobs
            for probe in CONTENT_FREE_INPUTS
        ]).mean(dim=0)                                                                      # (labels,)
        per_model[key] = (_weak_or_strong(tokenizer), calibration)
        return calibration


def _weak_or_strong(value: Any) -> Any:
    """A callable returning `value`: a weak reference where the type allows one."""
    try:
        return weakref.ref(value)
    except TypeError:
        return lambda: value


@dataclass
class _LabelScores:
    """Label log-probabilities from one forward, and the attention rows to show for each label."""

    logprobs: torch.Tensor                        # (labels,)
    prompt_ids: list[int]
    label_ids: list[list[int]]
    label_starts: list[int]                       # where each label's tokens start in the tree sequence
    attentions: Any = None                        # per layer (1, head, Q, Q) over the tree sequence, or None

    def rows_for(self, label: int) -> CapturedRows | None:
        """The attention of prompt + that label's tokens, as if they had been the only sequence."""
        if self.attentions is None:
            return None
        prompt_length = len(self.prompt_ids)
        start = self.label_starts[label]
        prompt_block = [layer[0, :, :prompt_length, :prompt_length] for layer in self.attentions]  # (head, P, P)
        later_rows = []
        for offset in range(len(self.label_ids[label])):
            keys = list(range(prompt_length)) + list(range(start, start + offset + 1))  # prompt, then the branch
            later_rows.append([layer[0, :, start + offset, keys] for layer in self.attentions])  # (head, keys)
        return CapturedRows(self.prompt_ids + self.label_ids[label], prompt_block, later_rows)


def _score_labels(
    model: Any, tokenizer: Any, prompt: str, labels: tuple[str, ...], capture_attention: bool
) -> _LabelScores:
    """log P(" label" | prompt) for each label (mean over its tokens) from ONE forward.

    The sequence is the prompt followed by every label's tokens as sibling branches: a label's tokens see the
    prompt and their own branch only, at the positions they would have right after the prompt, so each branch
    computes exactly what a separate forward over prompt + label would (and its attention rows, when captured).
    """
    device = model.device
    prompt_ids = _encode(tokenizer, prompt, device)[0].tolist()                      # (P,)
    label_ids = [tokenizer(" " + label, add_special_tokens=False).input_ids for label in labels]
    prompt_length = len(prompt_ids)
    sequence = list(prompt_ids)
    positions = list(range(prompt_length))
    branch = [-1] * prompt_length                   # -1: the shared prompt; else the label the token belongs to
    label_starts = []
    for index, ids in enumerate(label_ids):
        label_starts.append(len(sequence))
        sequence += ids
        positions += range(prompt_length, prompt_length + len(ids))
        branch += [index] * len(ids)
    first_logit = prompt_length - 1                 # logits from here on: the prompt's last position, the branches
    with torch.inference_mode():
        output = model(
            input_ids=torch.tensor([sequence], device=device),                          # (1, Q)
            position_ids=torch.tensor([positions], device=device),                      # (1, Q)
            attention_mask=_tree_masks(model, positions, branch),
            use_cache=False, output_attentions=capture_attention,
            logits_to_keep=len(sequence) - first_logit,
        )
        logprobs_at = torch.log_softmax(output.logits[0].float(), dim=-1)              # (Q - P + 1, vocab)
        scores = []
        for ids, start in zip(label_ids, label_starts):
            rows = [0] + [start + offset - first_logit for offset in range(len(ids) - 1)]  # who predicts each token
            scores.append(sum(logprobs_at[row, token] for row, token in zip(rows, ids)) / len(ids))
    return _LabelScores(torch.stack(scores).cpu(), prompt_ids, label_ids, label_starts,
                        output.attentions if capture_attention else None)


def _tree_masks(model: Any, positions: list[int], branch: list[int]) -> Any:
    """Additive (1, 1, Q, Q) masks for the branch sequence: causal, a branch sees only the prompt and itself.

    Models with sliding-window layers (Gemma-3) get a dict per layer type, the window applied on positions.
    """
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    device = model.device
    position = torch.tensor(positions, device=device)
    owner = torch.tensor(branch, device=device)
    index = torch.arange(len(positions), device=device)
    visible = (index[None, :] <= index[:, None]) & (
        (owner[None, :] == -1) | (owner[None, :] == owner[:, None])
    )                                                                                  # (query, key)
    blocked = torch.finfo(dtype).min

    def additive(allowed: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, blocked)
        return mask[None, None]                                                        # (1, 1, query, key)

    config = getattr(model.config, "get_text_config", lambda: model.config)()
    layer_types = set(getattr(config, "layer_types", None) or ())
    window = getattr(config, "sliding_window", None)
    if "sliding_attention" in layer_types and window:
        in_window = position[None, :] > position[:, None] - window                     # (query, key)
        return {"full_attention": additive(visible), "sliding_attention": additive(visible & in_window)}
    return additive(visible)


@dataclass
class _Line:
    text: str                                     # the completion up to the newline, right-stripped
    logprobs: list[float]                         # log-prob of each kept token
    attention: CapturedRows | None


def _generate_line(
    model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, constraint: Any = None,
    capture_attention: bool = False,
) -> _Line:
    """Greedy continuation of `prompt` up to the first newline (excluded) or EOS; also each kept token's log-prob.

    `constraint`, when given, is a transformers LogitsProcessor that masks tokens (e.g. _ContextSpanConstraint).
    With capture_attention the generation runs on the eager kernel and returns its attention: the prefill's
    (prompt × prompt) block and one row per decoding step, over the prompt and the kept tokens.
    """
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

    input_ids = _encode(tokenizer, prompt, model.device)                              # (1, prompt_tokens)
    prompt_length = input_ids.shape[1]
    eos = [i for i in {tokenizer.eos_token_id, *_as_list(getattr(model.generation_config, "eos_token_id", None))}
           if i is not None]
    config = GenerationConfig(
        max_new_tokens=max(1, min(int(max_new_tokens), MAX_NEW_TOKENS_CAP)), do_sample=False,
        eos_token_id=eos or None, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
        else (eos[0] if eos else 0),
        output_logits=True, return_dict_in_generate=True, output_attentions=capture_attention,
    )
    with torch.inference_mode(), _kernel_for(model, capture_attention):
        output = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config,
            stopping_criteria=StoppingCriteriaList([_StopAtNewline(tokenizer, prompt_length)]),
            logits_processor=LogitsProcessorList([constraint] if constraint is not None else []),
        )
        generated = output.sequences[0, prompt_length:].tolist()                       # (new_tokens,)
        logprobs = [
            float(torch.log_softmax(step_logits[0].float(), dim=-1)[token])           # step_logits: (1, vocab)
            for step_logits, token in zip(output.logits, generated)
        ]
        kept: list[int] = []
        for token in generated:
            if token in eos:
                break
            kept.append(token)
        text = tokenizer.decode(kept, skip_special_tokens=True)
        if "\n" in text:
            text = text[: text.index("\n")]
            kept = kept[:-1]
        attention = None
        if capture_attention:
            sequence = output.sequences[0].tolist()                                    # prompt + generated ids
            needs_last_row = len(kept) == len(generated)          # no stop token after the kept ones
            attention = rows_from_generation(output.attentions, sequence, output.cache if needs_last_row else None)
    return _Line(text.rstrip(), logprobs[: len(kept)], attention)


class _ContextSpanConstraint:
    """Logits processor: the answer so far must stay a (case-insensitive) substring of the context.

    Each step keeps, among the SPAN_CANDIDATES_PER_STEP most likely tokens, those that extend the answer to another
    substring of the context, plus a newline/EOS once the answer is non-empty; every other token is masked.
    Raw logits stay available (output_logits) for scoring. Greedy decoding then picks the best allowed token.
    """

    def __init__(self, tokenizer: Any, context: str, prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.context = context.lower()
        self.prompt_length = prompt_length
        self.stop_ids = {i for i in (tokenizer.eos_token_id,) if i is not None}

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[0, self.prompt_length:].tolist()                           # (new_tokens,)
        answer_so_far = self.tokenizer.decode(generated, skip_special_tokens=True).lstrip()
        top = torch.topk(scores[0], k=min(SPAN_CANDIDATES_PER_STEP, scores.shape[-1])).indices.tolist()
        allowed = []
        for token in top:
            if token in self.stop_ids:
                if answer_so_far:
                    allowed.append(token)
                continue
            text = self.tokenizer.decode(generated + [token], skip_special_tokens=True).lstrip()
            line, newline, _ = text.partition("\n")
            if newline and answer_so_far and line.rstrip().lower() == answer_so_far.rstrip().lower():
                allowed.append(token)                                                  # a clean stop
            elif not newline and line and line.lower() in self.context:
                allowed.append(token)
            elif not newline and not line and not generated:
                allowed.append(token)                         # a bare leading space ("▁") before the answer
        if not allowed:                                       # nothing in reach extends a span: end the answer
            allowed = [token for token in top if token in self.stop_ids] or top[:1]
        mask = torch.full_like(scores, float("-inf"))                                  # (1, vocab)
        mask[0, allowed] = 0.0
        return scores + mask


class _StopAtNewline:
    """Stopping criterion: the newest token contains a newline (each few-shot answer is one line)."""

    def __init__(self, tokenizer: Any, prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        done = input_ids.shape[1] > self.prompt_length and "\n" in self.tokenizer.decode(input_ids[0, -1:])
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


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
