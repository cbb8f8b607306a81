"""Few-shot prompting: one pretrained causal LM (Gemma-3-270M, or a tiny Gemma-3 in tests) does all four tasks.

Each task builds its prompt in service/tasks/fewshot.py, runs the model once, and comes back as a decoder result
over prompt + completion, with the prompt's segments (instruction, demonstrations, query, answer).
The demonstrations are chosen per input (service/tasks/demonstrations.py), on the model's turn (under its lock):
on the embedded profile English is matched with the packaged MiniLM, elsewhere with character n-grams.
Sentiment and Ask requests that arrive while the model is busy share their model calls (service/backends/batching.py):
Sentiment's label scoring over the cached prefix runs as one forward (service/tasks/lm_calls.py:score_label_jobs),
Ask's answers as one decoding loop (service/tasks/lines_together.py); each request keeps its own result. A request
identical to one still running (a class that clicked the same example) waits for that one's result instead.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any, Callable

from service.attention.capture import inference_mode
from service.backends.base import Backend
from service.backends.batching import Batcher
from service.heap import give_back_free_heap
from service.models.loading import LoadedModel
from service.models.sources import ModelSource
from service.result import AttentionResult, TaskName
from service.tasks.common import char_spans_to_segments, decoder_result, sink_segment
from service.tasks.demonstrations import Chosen, DemonstrationSelector
from service.tasks.fewshot import (QA_DEMONSTRATIONS, FewShotOutcome, answer_fewshot, classify_fewshot,
                                   translate_fewshot)
from service.tasks.lines_together import (LineBatch, alone, cached_prefix, generate_line_jobs, group_of,
                                          prompt_ids)
from service.tasks.lm_calls import LabelJob, LineJob, score_label_jobs, shared_model_calls, unshared

SENTENCE_ENCODER_KEY = "minilm"      # a profile that can show MiniLM in Explain also uses it to pick demonstrations
# Tasks whose demonstrations are chosen per input, measured on the dev split (eval/README.md):
# - qa: the fixed set (its prefix runs once: service/attention/prefix_cache.py) with the nearest pool item appended,
#   most similar last: EM 0.733 vs 0.667 fixed (= three chosen items, which cost a new prefix per request: 1.43x);
# - translation keeps its fixed pairs: three chosen pairs were a wash (chrF 44.3 / 68.1 vs 45.3 / 66.5) at 1.14x;
# - sentiment keeps its fixed bilingual set: chosen ones scored no better (dev 1.00 both; leave-one-out on the pool
#   0.950 vs 0.975) and cost a prefix run per request (2.9x), where the fixed prefix and calibration run once.
CHOSEN_PER_INPUT = frozenset({"qa"})
ANCHORED_PER_INPUT: dict[str, int] = {"qa": 1}   # task → chosen items appended after its fixed, cached ones
Plan = tuple[list[Chosen], Callable[[LoadedModel], FewShotOutcome]]   # the chosen demonstrations, the model call


class FewShotBackend(Backend):
    """Every task on the one causal LM under `model_key`; Explain can also show the models in `explain_keys`."""

    def __init__(self, source: ModelSource, device: str, max_attention_tokens: int, model_key: str,
                 explain_keys: dict[str, str] | None = None) -> None:
        super().__init__(source, device, max_attention_tokens)
        self.generation_key = model_key
        self.explain_keys = {"default": model_key, **(explain_keys or {})}
        encoder_key = SENTENCE_ENCODER_KEY if SENTENCE_ENCODER_KEY in self.explain_keys.values() else None
        self.selector = DemonstrationSelector(
            encoder=(lambda: self.model(encoder_key)) if encoder_key else None)
        self._call_batcher: Batcher[Any, Any] | None = None

    supports_zero_shot = True

    def answer(self, context: str, question: str, zero_shot: bool = False) -> AttentionResult:
        anchored = not zero_shot and "qa" in ANCHORED_PER_INPUT

        def plan() -> Plan:
            if not anchored:
                chosen = self.selector.for_qa(context, question) if self._chooses("qa", zero_shot) else []
                shown = () if zero_shot else tuple(choice.item for choice in chosen) if chosen else None
                anchors = None
            else:  # the fixed, cached demonstrations, then the nearest pool items (most similar last)
                chosen = self.selector.for_qa(context, question)[-ANCHORED_PER_INPUT["qa"]:]
                shown = tuple(QA_DEMONSTRATIONS) + tuple(choice.item for choice in chosen)
                anchors = len(QA_DEMONSTRATIONS)
            return chosen, lambda loaded: answer_fewshot(loaded.model, loaded.tokenizer, context, question,
                                                         demonstrations=shown, anchors=anchors)

        result = self._run("qa", plan, first_index=len(QA_DEMONSTRATIONS) + 1 if anchored else 1, shared=True)
        result.prediction = _with_offsets(result.prediction, context)
        return result

    def translate(self, text: str, direction: str, zero_shot: bool = False) -> AttentionResult:
        def plan() -> Plan:
            chosen = self.selector.for_translation(text, direction) if self._chooses("translation", zero_shot) else []
            shown = () if zero_shot else tuple(choice.item for choice in chosen) if chosen else None
            return chosen, lambda loaded: translate_fewshot(loaded.model, loaded.tokenizer, text, direction,
                                                            demonstrations=shown)

        result = self._run("translation", plan)
        result.prediction.setdefault("direction", direction)
        return result

    def classify(self, text: str, zero_shot: bool = False) -> AttentionResult:
        def plan() -> Plan:
            chosen = self.selector.for_sentiment(text) if self._chooses("sentiment", zero_shot) else []
            shown = () if zero_shot else tuple(choice.item for choice in chosen) if chosen else None
            return chosen, lambda loaded: classify_fewshot(loaded.model, loaded.tokenizer, text,
                                                           demonstrations=shown)

        return self._run("sentiment", plan, shared=True)

    def task_keys(self, task: str) -> list[str]:
        return [self.generation_key]

    def _chooses(self, task: str, zero_shot: bool) -> bool:
        """Whether this request's demonstrations are chosen per input (else: the task's fixed set, or none)."""
        return not zero_shot and task in CHOSEN_PER_INPUT

    def _run(self, task: TaskName, plan: Callable[[], Plan], first_index: int = 1,
             shared: bool = False) -> AttentionResult:
        """plan() → (the chosen demonstrations, call); then call(loaded model); both under the model's lock. The
        result records the chosen demonstrations (prompt order).
        Choosing runs the sentence encoder, a model too: on the 2-core CPU its forward beside the LM's stalled both
        (their thread teams share the cores; a 9-request Ask join took 3.4–4.2 s instead of 1.2 s), so it takes the
        LM's turn (~10 ms).
        shared: the call's label scoring or greedy line may run together with other requests'
        (service/backends/batching.py: the lock is let go while it waits for them)."""
        def finish(loaded: LoadedModel, chosen: list[Chosen], outcome: FewShotOutcome, ran: float) -> AttentionResult:
            result = fewshot_result(loaded, task, outcome, self.max_attention_tokens)
            result.timings = {"model": ran, "capture": result.timings["capture"]}
            result.demonstrations = [choice.to_dict(f"demonstration {index}")
                                     for index, choice in enumerate(chosen, start=first_index)] or None
            return result

        def runner(loaded: LoadedModel) -> AttentionResult:
            chosen, call = plan()
            started = time.perf_counter()
            outcome = call(loaded)
            return finish(loaded, chosen, outcome, time.perf_counter() - started)

        if not shared:
            return self.run(self.generation_key, runner)
        loaded = self.model(self.generation_key)
        with self.call_batcher(loaded).arrival() as arrival, loaded.lock, inference_mode():
            chosen, call = plan()
            with shared_model_calls(arrival.submit):
                started = time.perf_counter()
                outcome = call(loaded)              # its shared call may wait for, and run in, a batch
                ran = time.perf_counter() - started
            return finish(loaded, chosen, outcome, ran)

    def call_batcher(self, loaded: LoadedModel) -> Batcher[Any, Any]:
        """The batcher of shared model calls on the few-shot model (made once, on its lock)."""
        with self._registry_lock:
            if self._call_batcher is None:
                self._call_batcher = Batcher(loaded.lock, run_shared_jobs, session=SharedCalls,
                                              twin_key=shared_call_twin_key)
            return self._call_batcher


def shared_call_twin_key(job: Any) -> Hashable | None:
    """The key of jobs that get the same result (LabelJob / LineJob.twin_key): a class that sends one example at
    once runs it once."""
    return job.twin_key() if isinstance(job, (LabelJob, LineJob)) else None


def run_shared_jobs(jobs: list[Any]) -> list[Any]:
    """Each job's result in order: the label-scoring jobs together (score_label_jobs), the line jobs together
    (generate_line_jobs)."""
    if any(not isinstance(job, (LabelJob, LineJob)) for job in jobs):
        raise TypeError("a shared model call is a LabelJob or a LineJob")
    results: list[Any] = [None] * len(jobs)
    for kind, run_kind in ((LabelJob, score_label_jobs), (LineJob, generate_line_jobs)):
        indices = [index for index, job in enumerate(jobs) if isinstance(job, kind)]
        if indices:
            for index, result in zip(indices, run_kind([jobs[index] for index in indices])):
                results[index] = result
    return results


class SharedCalls:
    """The call batcher's session (service/backends/batching.py:Session): label-scoring jobs run at once, together
    (score_label_jobs); line jobs join the running decoding loop of their model and prefix (LineBatch), between
    its steps, and each line is answered as soon as it stops: continuous batching, so a long answer holds no one.
    A line job that would take its loop past the sliding window waits (and the jobs behind it: first come, first
    served) until the loop has room; one that fits no loop, or has no cached prefix, runs alone. A loop whose step
    fails is dropped and its lines run alone, so an error stays with its own request."""

    def __init__(self) -> None:
        self.loops: dict[tuple[Any, ...], LineBatch] = {}
        self._finished: list[tuple[int, object, BaseException | None]] = []

    def offer(self, tickets: list[int], jobs: list[Any]) -> int:
        if any(not isinstance(job, (LabelJob, LineJob)) for job in jobs):
            raise TypeError("a shared model call is a LabelJob or a LineJob")
        labels: list[tuple[int, LabelJob]] = []
        alone_lines: list[tuple[int, LineJob]] = []
        joining: dict[tuple[Any, ...], list[tuple[int, LineJob, list[int]]]] = {}
        taken = 0
        with unshared():
            for ticket, job in zip(tickets, jobs):
                if isinstance(job, LabelJob):
                    labels.append((ticket, job))
                else:
                    ids = prompt_ids(job)
                    prefix = cached_prefix(job, ids)
                    if prefix is None:
                        alone_lines.append((ticket, job))     # no cached prefix: over its whole prompt
                    else:
                        group = group_of(job)
                        loop = self.loops.get(group)
                        if loop is None:
                            loop = self.loops[group] = LineBatch(job.model, job.tokenizer, prefix,
                                                                 job.capture_attention)
                        entries = joining.setdefault(group, [])
                        if loop.fits([entry[2] for entry in entries] + [ids],
                                     [entry[1].max_new_tokens for entry in entries] + [job.max_new_tokens],
                                     [entry[1] for entry in entries] + [job]):
                            entries.append((ticket, job, ids))
                        elif not loop.busy() and not entries:
                            alone_lines.append((ticket, job))  # too long for a loop even alone
                        else:
                            break                              # waits for room; so do the jobs behind it
                taken += 1
            self._run_labels(labels)
            for group, entries in joining.items():
                self._join(self.loops[group], entries)
            for ticket, job in alone_lines:
                self._alone(ticket, job)
        if not self.busy():
            give_back_free_heap()
        return taken

    def step(self) -> None:
        for group, loop in list(self.loops.items()):
            if loop.busy():
                try:
                    loop.step()
                    self._finished += [(ticket, line, None) for ticket, line in loop.finished()]
                except BaseException:  # noqa: BLE001 - each of its lines runs alone and keeps its own error
                    self._finished += [(ticket, line, None) for ticket, line in loop.finished()]
                    del self.loops[group]
                    for row in loop.rows:
                        if not row.handed_back:
                            self._alone(row.key, row.job)
            if not loop.busy():
                self.loops.pop(group, None)
        if not self.busy():
            give_back_free_heap()                     # the run of batched forwards is over

    def busy(self) -> bool:
        return any(loop.busy() for loop in self.loops.values())

    def finished(self) -> list[tuple[int, object, BaseException | None]]:
        done, self._finished = self._finished, []
        return done

    def _run_labels(self, labels: list[tuple[int, LabelJob]]) -> None:
        if not labels:
            return
        try:
            scores = score_label_jobs([job for _, job in labels])
            self._finished += [(ticket, result, None) for (ticket, _), result in zip(labels, scores)]
        except BaseException:  # noqa: BLE001 - then each alone, so an error stays its own
            for ticket, job in labels:
                try:
                    self._finished.append((ticket, score_label_jobs([job])[0], None))
                except BaseException as error:  # noqa: BLE001
                    self._finished.append((ticket, None, error))

    def _join(self, loop: LineBatch, entries: list[tuple[int, LineJob, list[int]]]) -> None:
        if not entries:
            return
        try:
            loop.join([ticket for ticket, _, _ in entries], [job for _, job, _ in entries],
                      [ids for _, _, ids in entries])
            self._finished += [(ticket, line, None) for ticket, line in loop.finished()]
        except BaseException:  # noqa: BLE001 - none of them joined (LineBatch.join): each runs alone
            for ticket, job, _ in entries:
                self._alone(ticket, job)

    def _alone(self, ticket: int, job: LineJob) -> None:
        try:
            self._finished.append((ticket, alone(job), None))
        except BaseException as error:  # noqa: BLE001
            self._finished.append((ticket, None, error))


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
