"""Load: 40 concurrent gradio_client users on the tiny profile; every request answers correctly or gets "queue full"."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability.endpoints import ENDPOINTS, VALID_CALLS, answer_problem  # noqa: E402
from reliability.outcomes import Outcome, call, connect, summarise  # noqa: E402
from reliability.report import record_figures  # noqa: E402
from reliability.server import AppServer  # noqa: E402

USERS = 40                  # more than the queue holds (app.QUEUE_MAX_SIZE = 32), so "queue full" is exercised too
DURATION_SECONDS = 35.0     # users start new requests for this long
REQUEST_TIMEOUT_SECONDS = 90.0  # a request not answered in this time is a hang
ARRIVAL_GAP_SECONDS = 0.1   # users arrive one after another over the first 4 s, as people opening a page do


@pytest.fixture(scope="module")
def server() -> AppServer:
    with AppServer("tiny") as running:
        yield running


def _user(index: int, url: str, stop_at: float, outcomes: list[Outcome], lock: threading.Lock) -> None:
    time.sleep(index * ARRIVAL_GAP_SECONDS)
    try:
        client = connect(url)
    except Exception as error:  # noqa: BLE001 - a user who cannot even connect is a failure to report
        with lock:
            outcomes.append(Outcome("failure", 0.0, f"user {index} could not connect: {error}"))
        return
    turn = index
    while time.monotonic() < stop_at:
        api_name = ENDPOINTS[turn % len(ENDPOINTS)]
        arguments = VALID_CALLS[api_name]
        outcome = call(client, api_name, *arguments, timeout=REQUEST_TIMEOUT_SECONDS)
        if outcome.kind == "ok":
            problem = answer_problem(api_name, arguments, outcome.value)
            if problem:
                outcome = Outcome("failure", outcome.seconds, problem)
        outcome.detail = f"{api_name}: {outcome.detail}"
        with lock:
            outcomes.append(outcome)
        if outcome.kind == "queue_full":
            time.sleep(0.5)   # what a polite client does after "Queue is full! Please try again."
        turn += 1


def test_forty_concurrent_users_get_answers_or_queue_full(server: AppServer) -> None:
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + DURATION_SECONDS
    threads = [
        threading.Thread(target=_user, args=(index, server.url, stop_at, outcomes, lock), daemon=True)
        for index in range(USERS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_SECONDS + REQUEST_TIMEOUT_SECONDS + 30)
    elapsed = time.monotonic() - started
    hung_threads = sum(thread.is_alive() for thread in threads)

    summary = summarise(outcomes)
    print(f"\nload: {USERS} users for {elapsed:.1f} s: {summary.line()}")
    record_figures("load", {
        "users": USERS, "seconds": round(elapsed, 1), "served": summary.served, "queue_full": summary.queue_full,
        "clear_errors": summary.clear_errors, "failures": summary.failures,
        "p50_s": round(summary.p50, 3), "p95_s": round(summary.p95, 3), "max_s": round(summary.worst, 3),
    })
    assert hung_threads == 0, f"{hung_threads} users never finished (a request hung)"
    assert summary.failures == 0, "requests failed under load:\n" + "\n".join(summary.failure_details)
    assert summary.clear_errors == 0, "valid requests were refused with an error under load"
    assert summary.served >= USERS, f"only {summary.served} requests answered in {elapsed:.0f} s"
    assert server.alive, "the server died under load"
    # The server is still responsive afterwards.
    after = call(connect(server.url), "/classify", *VALID_CALLS["/classify"], timeout=30)
    assert after.kind == "ok", after
