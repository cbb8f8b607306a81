"""Few-shot prompting: one pretrained causal LM does sentiment, extractive QA and EN↔ZH translation without retraining.

Each task builds a compact prompt (an instruction, a few bilingual demonstrations, the query), runs the model and
returns a FewShotOutcome: the exact prompt, the model's completion, a JSON-ready prediction and named character
segments into `prompt + completion`. Works with any causal LM + tokenizer (a tiny random one gives garbage, but valid
output). No state is kept between calls.

    sentiment     compare next-token log-probabilities of " positive" / " negative", with contextual calibration
                  (Zhao et al. 2021: divide by the label probabilities the prompt gives a content-free input)
    qa            greedy answer, snapped to the best-matching span of the context: the answer is context[start:end]
    translation   greedy continuation of "English: … / Chinese: …" pairs, stopped at the newline
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import torch

Direction = str  # "en-zh" | "zh-en"

SENTIMENT_LABELS = ("positive", "negative")
CONTENT_FREE_INPUTS = ("N/A",)             # contextual calibration probe(s), averaged
MAX_NEW_TOKENS_CAP = 120
QA_MAX_ANSWER_TOKENS = 40
SPAN_CANDIDATES_PER_STEP = 64               # constrained QA decoding looks this far down the ranking each step


@dataclass
class FewShotOutcome:
    """What one few-shot call produced.

    segments: (name, char_start, char_end) into `prompt + completion`, tiling it in order:
    "instruction", "demonstration 1", …, "query", "answer" (the completion).
    """

    prompt: str
    completion: str
    prediction: dict[str, Any]
    segments: list[tuple[str, int, int]] = field(default_factory=list)

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

def classify_fewshot(model: Any, tokenizer: Any, text: str) -> FewShotOutcome:
    """Positive / negative with a calibrated score in [0, 1] (probability of the chosen label)."""
    builder = _PromptBuilder()
    builder.add("instruction", SENTIMENT_INSTRUCTION)
    for index, (review, label) in enumerate(SENTIMENT_DEMONSTRATIONS, start=1):
        builder.add(f"demonstration {index}", _sentiment_block(review, label) + "\n")
    query_prefix = builder.text
    builder.add("query", _sentiment_block(text, None))
    prompt = builder.text

    label_logprobs = _next_label_logprobs(model, tokenizer, prompt, SENTIMENT_LABELS)        # (labels,)
    calibration = torch.stack([
        _next_label_logprobs(model, tokenizer, query_prefix + _sentiment_block(probe, None), SENTIMENT_LABELS)
        for probe in CONTENT_FREE_INPUTS
    ]).mean(dim=0)                                                                          # (labels,)
    calibrated = torch.softmax(label_logprobs - calibration, dim=0)                         # (labels,)
    best = int(torch.argmax(calibrated))
    label = SENTIMENT_LABELS[best]
    prediction = {"label": label, "score": float(calibrated[best])}
    return builder.finish(" " + label, prediction)


def answer_fewshot(model: Any, tokenizer: Any, context: str, question: str) -> FewShotOutcome:
    """Extractive QA: generate an answer, then snap it to the best-matching span so context[start:end] == answer."""
    builder = _PromptBuilder()
    builder.add("instruction", QA_INSTRUCTION)
    for index, (demo_context, demo_question, demo_answer) in enumerate(QA_DEMONSTRATIONS, start=1):
        builder.add(f"demonstration {index}", _qa_block(demo_context, demo_question, demo_answer) + "\n")
    builder.add("query", _qa_block(context, question, None))
    prompt = builder.text

    limit = min(_token_count(tokenizer, context) + 1, QA_MAX_ANSWER_TOKENS)
    only_spans = _ContextSpanConstraint(tokenizer, _one_line(context), len(tokenizer(prompt).input_ids))
    completion, token_logprobs = _generate_line(model, tokenizer, prompt, limit, only_spans)
    start, end = snap_to_span(context, completion)
    start, end = trim_restated_question(context, question, start, end)
    score = math.exp(sum(token_logprobs) / len(token_logprobs)) if token_logprobs else 0.0
    prediction = {"answer": context[start:end], "start": start, "end": end, "score": float(score)}
    return builder.finish(completion, prediction)


def translate_fewshot(model: Any, tokenizer: Any, text: str, direction: Direction) -> FewShotOutcome:
    """Translate English → Chinese ("en-zh") or Chinese → English ("zh-en")."""
    if direction not in TRANSLATION_INSTRUCTION:
        raise ValueError(f"direction must be 'en-zh' or 'zh-en', got {direction!r}")
    source, target = direction.split("-")
    builder = _PromptBuilder()
    builder.add("instruction", TRANSLATION_INSTRUCTION[direction])
    for index, pair in enumerate(TRANSLATION_PAIRS, start=1):
        texts = {"en": pair[0], "zh": pair[1]}
        builder.add(f"demonstration {index}", _translation_block(source, texts[source], target, texts[target]) + "\n")
    builder.add("query", _translation_block(source, text, target, None))
    prompt = builder.text

    limit = min(2 * _token_count(tokenizer, text) + 10, MAX_NEW_TOKENS_CAP)
    completion, _ = _generate_line(model, tokenizer, prompt, limit)
    return builder.finish(completion, {"translation": completion.strip(), "direction": direction})


def detect_direction(text: str) -> Direction:
    """"zh-en" when the text is mostly CJK (counted against Latin letters), else "en-zh"."""
    cjk = sum(1 for char in text if _is_cjk(char))
    latin = sum(1 for char in text if char.isascii() and char.isalpha())
    return "zh-en" if cjk > 0 and cjk * 3 >= latin else "en-zh"


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
    """Concatenates named pieces and remembers their character spans."""

    def __init__(self) -> None:
        self.text = ""
        self.segments: list[tuple[str, int, int]] = []

    def add(self, name: str, piece: str) -> None:
        self.segments.append((name, len(self.text), len(self.text) + len(piece)))
        self.text += piece

    def finish(self, completion: str, prediction: dict[str, Any]) -> FewShotOutcome:
        segments = list(self.segments)
        segments.append(("answer", len(self.text), len(self.text) + len(completion)))
        return FewShotOutcome(prompt=self.text, completion=completion, prediction=prediction, segments=segments)


# --- model calls --------------------------------------------------------------------------------------------

def _encode(tokenizer: Any, text: str, device: torch.device) -> torch.Tensor:
    return tokenizer(text, return_tensors="pt").input_ids.to(device)                 # (1, tokens)


def _token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def _next_label_logprobs(model: Any, tokenizer: Any, prompt: str, labels: tuple[str, ...]) -> torch.Tensor:
    """log P(" label" | prompt) for each label: one forward when every label is one token, else one per label."""
    device = model.device
    prompt_ids = _encode(tokenizer, prompt, device)                                   # (1, prompt_tokens)
    label_ids = [tokenizer(" " + label, add_special_tokens=False).input_ids for label in labels]
    with torch.inference_mode():
        if all(len(ids) == 1 for ids in label_ids):
            logits = model(input_ids=prompt_ids, logits_to_keep=1).logits[0, -1]      # (vocab,)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            return torch.stack([logprobs[ids[0]] for ids in label_ids])
        scores = []
        for ids in label_ids:
            continuation = torch.tensor([ids], device=device)                          # (1, label_tokens)
            full = torch.cat([prompt_ids, continuation], dim=1)                        # (1, prompt + label tokens)
            logits = model(input_ids=full).logits[0, prompt_ids.shape[1] - 1:-1]      # (label_tokens, vocab)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            scores.append(logprobs.gather(1, continuation[0].unsqueeze(1)).sum() / len(ids))
        return torch.stack(scores)


def _generate_line(
    model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, constraint: Any = None
) -> tuple[str, list[float]]:
    """Greedy continuation of `prompt` up to the first newline (excluded) or EOS; also each kept token's log-prob.

    `constraint`, when given, is a transformers LogitsProcessor that masks tokens (e.g. _ContextSpanConstraint).
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
    )
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config,
            stopping_criteria=StoppingCriteriaList([_StopAtNewline(tokenizer, prompt_length)]),
            output_logits=True, return_dict_in_generate=True,
            logits_processor=LogitsProcessorList([constraint] if constraint is not None else []),
        )
    generated = output.sequences[0, prompt_length:].tolist()                           # (new_tokens,)
    logprobs = [
        float(torch.log_softmax(step_logits[0].float(), dim=-1)[token])               # step_logits: (1, vocab)
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
    return text.rstrip(), logprobs[: len(kept)]


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


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x2FA1F)
