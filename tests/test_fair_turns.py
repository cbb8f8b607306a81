"""Fair turns: a visitor (one gradio_client Client, one browser tab) has at most 2 model requests waiting or running;
more are refused at once with a clear message, others keep their place, and every way a request ends gives its
turn back (answer, error, cancel)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from access_fixtures import GatedService, ServedApp, wait_for

from demos.turns import TURNS_PER_VISITOR

REVIEW = "A warm, funny film."
REFUSAL = f"You already have {TURNS_PER_VISITOR} requests waiting"


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    service = GatedService()
    served = ServedApp(service)
    yield served
    service.gate.set()
    served.close()


@pytest.fixture()
def closed_gate(served: ServedApp) -> Iterator[Any]:
    """The model waits until the test opens the gate (always opened afterwards, so no run stays blocked)."""
    gate = served.service.gate
    gate.clear()
    yield gate
    gate.set()


def outcome(job: Any, timeout: float = 60.0) -> tuple[str, Any]:
    """("answer", prediction) or ("refused"/"error", message) for a gradio_client Job."""
    from gradio_client.exceptions import ValidationError

    try:
        return "answer", job.result(timeout=timeout)[0]
    except ValidationError as error:
        return "refused", str(error)
    except Exception as error:  # noqa: BLE001 (any other failure is reported by the assertion)
        return "error", f"{type(error).__name__}: {error}"


def test_a_visitor_with_ten_requests_gets_two_turns_and_the_next_visitor_waits_for_at_most_those_two(
        served: ServedApp, closed_gate: Any) -> None:
    visitor_a, visitor_b = served.client(), served.client()
    finished: list[str] = []
    lock = threading.Lock()

    def watch(name: str, job: Any, results: list[tuple[str, Any]]) -> None:
        result = outcome(job)
        with lock:
            results.append(result)
            if result[0] == "answer":
                finished.append(name)

    a_results: list[tuple[str, Any]] = []
    a_jobs = [visitor_a.submit(REVIEW, api_name="/classify") for _ in range(10)]
    watchers = [threading.Thread(target=watch, args=("A", job, a_results)) for job in a_jobs]
    for watcher in watchers:
        watcher.start()
    wait_for(lambda: sum(1 for kind, _ in a_results if kind == "refused") == 8, what="A's 8 refusals")
    assert served.held(visitor_a.session_hash) == TURNS_PER_VISITOR  # still waiting: the gate is closed

    b_results: list[tuple[str, Any]] = []
    b_job = visitor_b.submit("这部电影非常感人。", api_name="/classify")
    b_watcher = threading.Thread(target=watch, args=("B", b_job, b_results))
    b_watcher.start()
    wait_for(lambda: served.held(visitor_b.session_hash) == 1, what="B's request in the queue")
    closed_gate.set()
    for watcher in [*watchers, b_watcher]:
        watcher.join(timeout=60)

    kinds = sorted(kind for kind, _ in a_results)
    assert kinds == ["answer"] * 2 + ["refused"] * 8, a_results
    assert all(REFUSAL in message for kind, message in a_results if kind == "refused")
    assert b_results and b_results[0][0] == "answer", b_results
    assert finished.index("B") <= TURNS_PER_VISITOR, f"B answered after {finished.index('B')} of A's runs"
    assert served.held(visitor_a.session_hash) == served.held(visitor_b.session_hash) == 0


def test_a_refusal_comes_at_once_while_the_turns_wait(served: ServedApp, closed_gate: Any) -> None:
    visitor = served.client()
    jobs = [visitor.submit(REVIEW, api_name="/classify") for _ in range(TURNS_PER_VISITOR)]
    wait_for(lambda: served.held(visitor.session_hash) == TURNS_PER_VISITOR, what="two turns in the queue")
    start = time.monotonic()
    kind, message = outcome(visitor.submit(REVIEW, api_name="/classify"), timeout=10)
    assert (kind, time.monotonic() - start < 5) == ("refused", True) and REFUSAL in message
    closed_gate.set()
    assert [outcome(job)[0] for job in jobs] == ["answer"] * TURNS_PER_VISITOR


def test_turns_come_back_after_answers(served: ServedApp) -> None:
    visitor = served.client()
    for _ in range(3):  # three rounds of two: each round's answers give both turns back
        jobs = [visitor.submit(REVIEW, api_name="/classify") for _ in range(TURNS_PER_VISITOR)]
        assert [outcome(job)[0] for job in jobs] == ["answer"] * TURNS_PER_VISITOR
    assert served.held(visitor.session_hash) == 0


def test_turns_come_back_after_errors(served: ServedApp) -> None:
    visitor = served.client()
    failed = [visitor.submit("   ", api_name="/classify") for _ in range(TURNS_PER_VISITOR)]
    assert [outcome(job)[0] for job in failed] == ["error"] * TURNS_PER_VISITOR
    jobs = [visitor.submit(REVIEW, api_name="/classify") for _ in range(TURNS_PER_VISITOR)]
    assert [outcome(job)[0] for job in jobs] == ["answer"] * TURNS_PER_VISITOR


def test_turns_come_back_after_a_cancel(served: ServedApp, closed_gate: Any) -> None:
    visitor = served.client()
    jobs = [visitor.submit(REVIEW, api_name="/classify") for _ in range(TURNS_PER_VISITOR)]
    wait_for(lambda: served.held(visitor.session_hash) == TURNS_PER_VISITOR, what="two turns in the queue")
    for job in jobs:  # one is running (blocked at the gate), one is waiting
        job.cancel()
    # Gradio drops a cancelled job on its next queue pass; on a busy 2-core machine that took over 20 s once.
    wait_for(lambda: served.held(visitor.session_hash) == 0, timeout=90, what="cancelled requests to leave the queue")
    closed_gate.set()
    jobs = [visitor.submit(REVIEW, api_name="/classify") for _ in range(TURNS_PER_VISITOR)]
    assert [outcome(job)[0] for job in jobs] == ["answer"] * TURNS_PER_VISITOR


def test_turns_are_counted_across_tabs_not_per_endpoint(served: ServedApp, closed_gate: Any) -> None:
    visitor = served.client()
    jobs = [visitor.submit(REVIEW, api_name="/classify"),
            visitor.submit("Paris is the capital of France.", "What is the capital?", api_name="/answer")]
    wait_for(lambda: served.held(visitor.session_hash) == 2, what="two turns in the queue")
    kind, message = outcome(visitor.submit("Hello world.", "auto", api_name="/translate"), timeout=10)
    assert kind == "refused" and REFUSAL in message
    closed_gate.set()
    assert [outcome(job)[0] for job in jobs] == ["answer", "answer"]
