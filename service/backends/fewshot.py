"""Few-shot prompting: one pretrained causal LM (Gemma-3-270M, or a tiny Gemma-3 in tests) does all four tasks.

Each task builds its prompt in service/tasks/fewshot.py, runs the model once, and comes back as a decoder result
over prompt + completion, with the prompt's segments (instruction, demonstrations, query, answer).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from service.backends.base import Backend
from service.models.loading import LoadedModel
from service.models.sources import ModelSource
from service.result import AttentionResult, TaskName
from service.tasks.common import char_spans_to_segments, decoder_result, sink_segment
from service.tasks.fewshot import FewShotOutcome, answer_fewshot, classify_fewshot, translate_fewshot


class FewShotBackend(Backend):
    """Every task on the one causal LM under `model_key`; Explain can also show the models in `explain_keys`."""

    def __init__(self, source: ModelSource, device: str, max_attention_tokens: int, model_key: str,
                 explain_keys: dict[str, str] | None = None) -> None:
        super().__init__(source, device, max_attention_tokens)
        self.generation_key = model_key
        self.explain_keys = {"default": model_key, **(explain_keys or {})}

    supports_zero_shot = True

    def answer(self, context: str, question: str, zero_shot: bool = False) -> AttentionResult:
        shown = () if zero_shot else None
        result = self._run("qa", lambda loaded: answer_fewshot(loaded.model, loaded.tokenizer, context, question,
                                                               demonstrations=shown))
        result.prediction = _with_offsets(result.prediction, context)
        return result

    def translate(self, text: str, direction: str, zero_shot: bool = False) -> AttentionResult:
        shown = () if zero_shot else None
        result = self._run("translation", lambda loaded: translate_fewshot(loaded.model, loaded.tokenizer, text,
                                                                           direction, demonstrations=shown))
        result.prediction.setdefault("direction", direction)
        return result

    def classify(self, text: str, zero_shot: bool = False) -> AttentionResult:
        shown = () if zero_shot else None
        return self._run("sentiment", lambda loaded: classify_fewshot(loaded.model, loaded.tokenizer, text,
                                                                      demonstrations=shown))

    def task_keys(self, task: str) -> list[str]:
        return [self.generation_key]

    def _run(self, task: TaskName, call: Callable[[LoadedModel], FewShotOutcome]) -> AttentionResult:
        def runner(loaded: LoadedModel) -> AttentionResult:
            started = time.perf_counter()
            outcome = call(loaded)
            ran = time.perf_counter() - started
            result = fewshot_result(loaded, task, outcome, self.max_attention_tokens)
            result.timings = {"model": ran, "capture": result.timings["capture"]}
            return result

        return self.run(self.generation_key, runner)


def fewshot_result(loaded: LoadedModel, task: TaskName, outcome: FewShotOutcome,
                   max_attention_tokens: int) -> AttentionResult:
    """A decoder AttentionResult over the re-tokenised prompt + completion of a few-shot outcome.

    When those are the very tokens the model ran on (the usual case), the rows it computed while running are
    reused; otherwise one eager pass computes them. timings["capture"] covers both.
    """
    started = time.perf_counter()
    encoding = loaded.tokenizer(outcome.text, return_offsets_mapping=True)  # adds <bos> like generation did
    ids = encoding["input_ids"]
    offsets = [tuple(pair) for pair in encoding["offset_mapping"]]
    segments = sink_segment(loaded.tokenizer, ids) + char_spans_to_segments(offsets, outcome.segments)
    result = decoder_result(
        loaded, task, ids, segments, max_attention_tokens, prediction=outcome.prediction,
        prompt=outcome.prompt, captured=outcome.attention,
    )
    result.timings = {"capture": time.perf_counter() - started}
    return result


def _with_offsets(prediction: dict[str, Any], context: str) -> dict[str, Any]:
    """A QA prediction with character offsets into the context (-1 when the answer is not a span of it)."""
    answer = prediction.get("answer", "")
    if "start" not in prediction or "end" not in prediction:
        start = context.find(answer) if answer else -1
        prediction["start"] = start
        prediction["end"] = start + len(answer) if start >= 0 else -1
    prediction.setdefault("score", 0.0)
    return prediction
