"""Sentiment requests that wait together share one forward (service/backends/batching.py), and each gets exactly the
result it would get alone; a bad request fails alone; a lone request runs at once; identical requests run once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from service import ModelService
from service.backends.batching import Batcher, max_batch_from_environment
from service.errors import InvalidInputError
from service.tasks import fewshot as prompts
from service.tasks import lm_calls

REVIEWS = ["I loved this movie.", "The soup was cold and the waiter ignored us all evening, never again.", "好",
           "这部电影非常感人，我哭了。", "Meh."]


@pytest.fixture(scope="module")
def fewshot() -> ModelService:
    service = ModelService("tiny-fewshot", max_attention_tokens=1024)
    service.classify("A warm, funny film.")          # the prefix and the calibration, once
    return service


def together(service: ModelService, calls: list[Callable[[], Any]], timeout: float = 30) -> list[Any]:
    """Each call on its own thread, all arriving while the model is busy: they meet in one batch. Returns each
    call's result or the exception it raised (a call marked reaches_model = False is not waited for)."""
    loaded = service.backend.model(service.backend.generation_key)
    batcher = service.backend.call_batcher(loaded)
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            outcomes[index] = calls[index]()
        except Exception as error:  # noqa: BLE001 - the test looks at it
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    with loaded.lock:                                  # busy: every request arrives and waits for the lock
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        while batcher.coming() < sum(1 for call in calls if getattr(call, "reaches_model", True)):
            assert time.monotonic() < deadline, "the requests never reached the model"
            time.sleep(0.005)
    for thread in threads:
        thread.join(timeout=timeout * 10)
    return outcomes


def assert_same_result(alone: Any, batched: Any) -> None:
    assert batched.prediction["label"] == alone.prediction["label"]
    assert batched.prediction["score"] == pytest.approx(alone.prediction["score"], abs=1e-5)
    assert batched.decoder_token_ids == alone.decoder_token_ids
    assert batched.segments == alone.segments and batched.notices == alone.notices
    difference = np.abs(np.asarray(batched.decoder_attention) - np.asarray(alone.decoder_attention)).max()
    assert difference < 1e-5


def test_requests_that_wait_together_run_as_one_batch_with_their_own_results(fewshot: ModelService) -> None:
    alone = [fewshot.classify(review) for review in REVIEWS]
    batcher = fewshot.backend.call_batcher(fewshot.backend.model("fewshot"))
    before = len(batcher.batch_sizes)
    batched = together(fewshot, [lambda review=review: fewshot.classify(review) for review in REVIEWS])
    assert batcher.batch_sizes[before:] == [len(REVIEWS)]
    for one, many in zip(alone, batched):
        assert_same_result(one, many)


def test_the_batched_forward_gives_each_prompt_its_own_scores_and_attention(fewshot: ModelService) -> None:
    loaded = fewshot.backend.model("fewshot")
    prefix = prompts.SENTIMENT_INSTRUCTION + "".join(prompts._sentiment_block(review, label) + "\n"
                                                     for review, label in prompts.SENTIMENT_DEMONSTRATIONS)
    jobs = [lm_calls.LabelJob(loaded.model, loaded.tokenizer, f"{prefix}Review: {review}\nSentiment:",
                              lm_calls.SENTIMENT_LABELS, True, prefix) for review in REVIEWS]
    with loaded.lock, torch.inference_mode(), lm_calls.kernel_for(loaded.model, True):
        alone = [lm_calls.score_labels(job.model, job.tokenizer, job.prompt, job.labels, True, prefix)
                 for job in jobs]
        batched = lm_calls.score_label_jobs(jobs)
    for one, many in zip(alone, batched):
        assert torch.allclose(one.logprobs, many.logprobs, atol=1e-5)
        for layer_alone, layer_batched in zip(one.attentions, many.attentions):   # (1, head, Q, Q) each
            assert layer_alone.shape == layer_batched.shape
            assert (layer_alone - layer_batched).abs().max() < 1e-5


@pytest.mark.parametrize("labels", [lm_calls.SENTIMENT_LABELS, ("very good indeed", "bad")])
def test_label_scores_equal_one_plain_forward_per_label(fewshot: ModelService, labels: tuple[str, ...]) -> None:
    """Only the positions that predict a label token go through the output layer (LabelTree.scoring_positions):
    each label's score is still its mean log-probability from a plain forward over prompt + " label", alone and
    batched, for one-token and several-token labels."""
    loaded = fewshot.backend.model("fewshot")
    model, tokenizer = loaded.model, loaded.tokenizer
    prefix = prompts.SENTIMENT_INSTRUCTION
    prompts_ = [f"{prefix}Review: {review}\nSentiment:" for review in REVIEWS[:3]]
    if labels != lm_calls.SENTIMENT_LABELS:                 # the case with several predicting positions per label
        assert any(len(tokenizer(" " + label, add_special_tokens=False).input_ids) > 1 for label in labels)
    jobs = [lm_calls.LabelJob(model, tokenizer, prompt, labels, False, prefix) for prompt in prompts_]
    with loaded.lock, torch.inference_mode():
        batched = lm_calls.score_label_jobs(jobs)
        for prompt, scores in zip(prompts_, batched):
            prompt_ids = tokenizer(prompt).input_ids
            expected = []
            for label in labels:
                label_ids = tokenizer(" " + label, add_special_tokens=False).input_ids
                logits = model(input_ids=torch.tensor([prompt_ids + label_ids])).logits[0]  # (P + L, vocab)
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                predicted = [logprobs[len(prompt_ids) - 1 + offset, token] for offset, token in enumerate(label_ids)]
                expected.append(sum(predicted) / len(label_ids))
            assert torch.allclose(scores.logprobs, torch.stack(expected), atol=1e-5)
            alone = lm_calls.score_labels(model, tokenizer, prompt, labels, False, prefix)
            assert torch.allclose(alone.logprobs, scores.logprobs, atol=1e-5)


def test_a_few_shot_and_a_zero_shot_request_batch_apart(fewshot: ModelService) -> None:
    fewshot.classify("warm up", zero_shot=True)
    alone = [fewshot.classify(REVIEWS[0]), fewshot.classify(REVIEWS[1], zero_shot=True)]
    batched = together(fewshot, [lambda: fewshot.classify(REVIEWS[0]),
                                 lambda: fewshot.classify(REVIEWS[1], zero_shot=True)])
    for one, many in zip(alone, batched):
        assert_same_result(one, many)


def test_an_invalid_request_fails_alone(fewshot: ModelService) -> None:
    def empty() -> Any:
        return fewshot.classify("   ")

    empty.reaches_model = False                       # refused by validation before it queues anything
    outcomes = together(fewshot, [lambda: fewshot.classify(REVIEWS[0]), empty,
                                  lambda: fewshot.classify(REVIEWS[2])])
    assert isinstance(outcomes[1], InvalidInputError)
    assert [outcome.prediction["label"] for outcome in (outcomes[0], outcomes[2])] == [
        fewshot.classify(REVIEWS[0]).prediction["label"], fewshot.classify(REVIEWS[2]).prediction["label"]]


def test_identical_requests_at_once_run_once_and_each_gets_the_answer_alone_gives(fewshot: ModelService) -> None:
    context, question = "The Eiffel Tower is in Paris. It was finished in 1889.", "When was it finished?"
    review = REVIEWS[1]
    alone_answer, alone_label = fewshot.answer(context, question), fewshot.classify(review)
    batcher = fewshot.backend.call_batcher(fewshot.backend.model("fewshot"))
    twins_before = batcher.twins_answered
    outcomes = together(fewshot, [*[lambda: fewshot.answer(context, question)] * 3,
                                  lambda: fewshot.answer(context, "Where is it?"),
                                  *[lambda: fewshot.classify(review)] * 2])
    assert batcher.twins_answered - twins_before == 3        # two Ask twins, one Sentiment twin
    for answered in outcomes[:3]:
        assert answered.prediction == alone_answer.prediction
        assert answered.decoder_token_ids == alone_answer.decoder_token_ids
        difference = np.abs(np.asarray(answered.decoder_attention) - np.asarray(alone_answer.decoder_attention))
        assert difference.max() < 1e-5
    assert outcomes[3].decoder_token_ids != alone_answer.decoder_token_ids       # its own question, its own run
    assert len({id(answered) for answered in outcomes}) == len(outcomes)         # each request its own result
    for labelled in outcomes[4:]:
        assert_same_result(alone_label, labelled)


def test_a_job_whose_forward_raises_fails_alone_and_the_others_get_answers() -> None:
    lock = threading.Lock()

    def run_batch(jobs: list[str]) -> list[str]:
        if "bad" in jobs:
            raise ValueError("this job cannot run")
        return [job.upper() for job in jobs]

    batcher: Batcher[str, str] = Batcher(lock, run_batch, max_batch=8)
    outcomes = batched_submits(batcher, ["a", "bad", "c"])
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], ValueError)
    assert batcher.batch_sizes[0] == 3                # one try together, then each alone


def test_a_lone_request_runs_at_once() -> None:
    lock = threading.Lock()
    batcher: Batcher[str, str] = Batcher(lock, lambda jobs: [job * 2 for job in jobs], max_batch=8)
    started = time.perf_counter()
    with batcher.arrival() as arrival, lock:
        assert arrival.submit("x") == "xx"
    assert time.perf_counter() - started < 0.05 and batcher.batch_sizes == [1]


def test_batches_hold_at_most_max_batch_and_every_job_is_answered() -> None:
    lock = threading.Lock()
    batcher: Batcher[int, int] = Batcher(lock, lambda jobs: [job + 1 for job in jobs], max_batch=3)
    outcomes = batched_submits(batcher, list(range(7)))
    assert outcomes == [job + 1 for job in range(7)]
    assert max(batcher.batch_sizes) <= 3 and sum(batcher.batch_sizes) == 7


def test_identical_jobs_waiting_together_run_once_and_each_gets_its_result() -> None:
    ran: list[list[str]] = []

    def run_batch(jobs: list[str]) -> list[str]:
        ran.append(list(jobs))
        return [job.upper() for job in jobs]

    batcher: Batcher[str, str] = Batcher(threading.Lock(), run_batch, max_batch=8,
                                         twin_key=lambda job: None if job == "own" else job)
    outcomes = batched_submits(batcher, ["a", "a", "b", "own", "a", "own"])
    assert outcomes == ["A", "A", "B", "OWN", "A", "OWN"]
    assert sorted(job for batch in ran for job in batch) == ["a", "b", "own", "own"]   # None: never a twin
    assert batcher.twins_answered == 2
    assert batched_submits(batcher, ["a", "b"]) == ["A", "B"] and batcher.twins_answered == 2  # answered: run again


def test_the_error_of_a_job_reaches_its_twins_and_it_runs_alone_once() -> None:
    ran: list[list[str]] = []

    def run_batch(jobs: list[str]) -> list[str]:
        ran.append(list(jobs))
        if "bad" in jobs:
            raise ValueError("this job cannot run")
        return [job.upper() for job in jobs]

    batcher: Batcher[str, str] = Batcher(threading.Lock(), run_batch, max_batch=8, twin_key=lambda job: job)
    outcomes = batched_submits(batcher, ["bad", "c", "bad"])
    assert isinstance(outcomes[0], ValueError) and outcomes[2] is outcomes[0] and outcomes[1] == "C"
    assert sorted(ran[0]) == ["bad", "c"] and sorted(ran[1:]) == [["bad"], ["c"]]


def test_batching_off_runs_identical_jobs_each_alone() -> None:
    batcher: Batcher[str, str] = Batcher(threading.Lock(), lambda jobs: [job.upper() for job in jobs], max_batch=1,
                                         twin_key=lambda job: job)
    assert batched_submits(batcher, ["a", "a"]) == ["A", "A"]
    assert batcher.batch_sizes == [1, 1] and batcher.twins_answered == 0


def test_max_batch_one_runs_every_job_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTENTION_ATLAS_MAX_BATCH", "1")
    assert max_batch_from_environment() == 1
    lock = threading.Lock()
    batcher: Batcher[int, int] = Batcher(lock, lambda jobs: list(jobs))
    assert batched_submits(batcher, [1, 2, 3]) == [1, 2, 3] and batcher.batch_sizes == [1, 1, 1]
    monkeypatch.setenv("ATTENTION_ATLAS_MAX_BATCH", "zero")
    with pytest.raises(ValueError, match="ATTENTION_ATLAS_MAX_BATCH"):
        max_batch_from_environment()


def batched_submits(batcher: Batcher[Any, Any], jobs: list[Any]) -> list[Any]:
    """Each job submitted from its own thread as the backend does (announce, take the lock, submit), all arriving
    while the lock is held; returns each result or exception."""
    outcomes: list[Any] = [None] * len(jobs)

    def run(index: int) -> None:
        with batcher.arrival() as arrival, batcher.lock:
            try:
                outcomes[index] = arrival.submit(jobs[index])
            except Exception as error:  # noqa: BLE001 - the test looks at it
                outcomes[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    with batcher.lock:
        for thread in threads:
            thread.start()
        while batcher.coming() < len(jobs):
            time.sleep(0.002)
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a submit never returned"
    return outcomes


class Countdown:
    """A stepped session (continuous batching): job n is answered after n steps; job "bad" makes a step raise."""

    def __init__(self, before_step: Callable[[int], None] = lambda step: None) -> None:
        self.left: dict[int, Any] = {}
        self.names: dict[int, Any] = {}
        self.steps: list[list[Any]] = []               # the jobs each step ran
        self.step_times: list[float] = []
        self.before_step = before_step
        self._finished: list[tuple[int, object, BaseException | None]] = []

    def offer(self, tickets: list[int], jobs: list[Any]) -> int:
        for ticket, job in zip(tickets, jobs):
            self.left[ticket], self.names[ticket] = job, job
        return len(jobs)

    def step(self) -> None:
        self.before_step(len(self.steps))
        self.step_times.append(time.monotonic())
        self.steps.append(sorted(self.names[ticket] for ticket in self.left))
        if any(job == "bad" for job in self.left.values()):
            raise ValueError("this step cannot run")
        for ticket in list(self.left):
            self.left[ticket] -= 1
            if self.left[ticket] == 0:
                del self.left[ticket]
                self._finished.append((ticket, f"{self.names[ticket]} steps", None))

    def busy(self) -> bool:
        return bool(self.left)

    def finished(self) -> list[tuple[int, object, BaseException | None]]:
        done, self._finished = self._finished, []
        return done


def wait_for_company(batcher: Batcher[Any, Any]) -> Callable[[int], None]:
    """A step hook: the first step lasts until another request is on its way; every step takes 10 ms."""
    def before_step(step: int) -> None:
        deadline = time.monotonic() + 10
        while step == 0 and batcher.coming() < 1:
            assert time.monotonic() < deadline, "the second request never came"
            time.sleep(0.002)
        time.sleep(0.01)
    return before_step


def stepped_batcher(twin_key: Callable[[Any], Any] | None = None) -> tuple[Batcher[Any, Any], list[Countdown]]:
    sessions: list[Countdown] = []

    def new_session() -> Countdown:
        sessions.append(Countdown(wait_for_company(batcher)))
        return sessions[-1]

    batcher: Batcher[Any, Any] = Batcher(threading.Lock(), lambda jobs: [f"alone {job}" for job in jobs],
                                         max_batch=8, session=new_session, twin_key=twin_key)
    return batcher, sessions


def ask_in_turn(batcher: Batcher[Any, Any], job: int, returned: dict[int, float]) -> None:
    """Submit as the backend does; note when the answer came (still holding the lock: before any later step)."""
    with batcher.arrival() as arrival, batcher.lock:
        assert arrival.submit(job) == f"{job} steps"
        returned[job] = time.monotonic()


@pytest.mark.parametrize("leader_job, joining_job, steps", [
    (6, 2, [[6], [2, 6], [2, 6], [6], [6], [6]]),       # the short job joins and returns before the long one ends
    (3, 8, [[3], [3, 8], [3, 8]] + [[8]] * 6),          # the leader's job ends first: the other leads the rest
])
def test_a_job_arriving_while_a_session_runs_joins_it_and_each_returns_when_its_own_steps_end(
        leader_job: int, joining_job: int, steps: list[list[int]]) -> None:
    batcher, sessions = stepped_batcher()
    returned: dict[int, float] = {}
    joining = threading.Thread(target=lambda: (wait_until(lambda: sessions and sessions[0].left),
                                               ask_in_turn(batcher, joining_job, returned)))
    joining.start()
    ask_in_turn(batcher, leader_job, returned)          # leads; the other arrives during its first step
    joining.join(timeout=10)
    assert not joining.is_alive(), "the joining request never returned"
    session = sessions[0]
    assert len(sessions) == 1 and batcher.batch_sizes == [1, 1]          # one session; the second job joined it
    assert session.steps == steps
    first = min(leader_job, joining_job)
    assert returned[first] < session.step_times[3] < returned[max(leader_job, joining_job)]   # answered at once


def test_a_job_identical_to_a_running_one_waits_for_its_answer_and_runs_no_step() -> None:
    batcher, sessions = stepped_batcher(twin_key=lambda job: job)
    returned: dict[int, float] = {}
    twin_returned: list[float] = []

    def twin() -> None:
        wait_until(lambda: sessions and sessions[0].left)
        with batcher.arrival() as arrival, batcher.lock:
            assert arrival.submit(3) == "3 steps"
            twin_returned.append(time.monotonic())

    joining = threading.Thread(target=twin)
    joining.start()
    ask_in_turn(batcher, 3, returned)                   # leads; its twin arrives during the first step
    joining.join(timeout=10)
    assert not joining.is_alive(), "the twin never returned"
    assert sessions[0].steps == [[3], [3], [3]] and batcher.batch_sizes == [1] and batcher.twins_answered == 1
    assert twin_returned and twin_returned[0] > sessions[0].step_times[-1]


def wait_until(condition: Callable[[], Any], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.002)


def test_a_session_step_that_raises_runs_each_of_its_jobs_alone() -> None:
    lock = threading.Lock()

    def run_batch(jobs: list[Any]) -> list[Any]:
        if jobs == ["bad"]:
            raise ValueError("this job cannot run")
        return [f"alone {job}" for job in jobs]

    batcher: Batcher[Any, Any] = Batcher(lock, run_batch, max_batch=8, session=Countdown)
    outcomes = batched_submits(batcher, [3, "bad", 2])
    assert outcomes[0] == "alone 3" and outcomes[2] == "alone 2"
    assert isinstance(outcomes[1], ValueError) and "this job" in str(outcomes[1])


def test_max_batch_one_runs_every_job_alone_without_a_session() -> None:
    lock = threading.Lock()
    batcher: Batcher[Any, Any] = Batcher(lock, lambda jobs: [f"alone {job}" for job in jobs], max_batch=1,
                                         session=lambda: pytest.fail("a session with batching off"))
    assert batched_submits(batcher, [1, 2]) == ["alone 1", "alone 2"] and batcher.batch_sizes == [1, 1]
