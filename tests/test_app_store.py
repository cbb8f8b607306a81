"""The result store: one result per session and task, bounded in entries and bytes, expiring after a while."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from demos.store import ResultStore, result_bytes
from service.result import AttentionResult


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result_of(size_tokens: int = 4, layers: int = 1) -> AttentionResult:
    attention = np.zeros((layers, 1, size_tokens, size_tokens), dtype=np.float32)  # (layer, head, query, key)
    return AttentionResult(task="generation", model_name="m", architecture="decoder", prediction={"text": ""},
                           decoder_tokens=["t"] * size_tokens, decoder_attention=attention)


def test_keeps_the_latest_result_per_session_and_task() -> None:
    store = ResultStore()
    first, second, other = result_of(), result_of(), result_of()
    store.put("a", "generation", first)
    store.put("a", "generation", second)
    store.put("a", "qa", other)
    assert store.get("a", "generation") is second
    assert store.get("a", "qa") is other
    assert store.get("b", "generation") is None
    assert len(store) == 2


def test_results_expire_after_the_time_to_live_since_last_use() -> None:
    clock = FakeClock()
    store = ResultStore(ttl_seconds=60, clock=clock)
    store.put("a", "qa", result_of())
    clock.now += 50
    assert store.get("a", "qa") is not None  # a use renews it
    clock.now += 50
    assert store.get("a", "qa") is not None
    clock.now += 61
    assert store.get("a", "qa") is None
    assert store.total_bytes == 0


def test_least_recently_used_goes_first_when_full() -> None:
    store = ResultStore(max_entries=2)
    store.put("a", "qa", result_of())
    store.put("b", "qa", result_of())
    store.get("a", "qa")
    store.put("c", "qa", result_of())
    assert store.get("b", "qa") is None
    assert store.get("a", "qa") is not None and store.get("c", "qa") is not None


def test_attention_bytes_stay_under_the_limit_but_the_newest_result_is_kept() -> None:
    one = result_bytes(result_of(16))
    assert one == 16 * 16 * 4
    store = ResultStore(max_bytes=3 * one)
    for session in "abcde":
        store.put(session, "qa", result_of(16))
    assert len(store) == 3 and store.total_bytes <= 3 * one
    huge = result_of(64)
    store.put("z", "qa", huge)
    assert store.get("z", "qa") is huge and len(store) == 1


def test_clear_session_forgets_only_that_session() -> None:
    store = ResultStore()
    store.put("a", "qa", result_of())
    store.put("a", "generation", result_of())
    store.put("b", "qa", result_of())
    store.clear_session("a")
    assert store.get("a", "qa") is None and store.get("a", "generation") is None
    assert store.get("b", "qa") is not None


def test_concurrent_use_keeps_the_bounds() -> None:
    store = ResultStore(max_entries=5)

    def worker(index: int) -> None:
        for step in range(200):
            store.put(f"s{index}-{step % 7}", "qa", result_of())
            store.get(f"s{index}-{(step + 3) % 7}", "qa")

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) <= 5
    assert store.total_bytes == sum(result_bytes(result_of()) for _ in range(len(store)))


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ResultStore(max_entries=0)
