"""The heap after a request: what a model run freed goes back to the OS (service/heap.py, LoadedModel.turn)."""

from __future__ import annotations

import sys
import threading

import pytest

from service import heap
from service.models.loading import LoadedModel


def resident_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap")
def test_freed_small_arrays_between_kept_ones_go_back_to_the_os() -> None:
    heap.keep_big_arrays_out_of_the_heap()
    if heap._LIBC is None:
        pytest.skip("not glibc")
    chunks = [bytearray(64 * 1024) for _ in range(3200)]   # 200 MiB of arrays under the mmap threshold: the heap
    kept = chunks[::16]                                     # one in 16 stays, so the freed pages sit between them
    del chunks
    before = resident_bytes()
    heap.give_back_free_heap()
    given_back = before - resident_bytes()
    assert given_back > 100 * 2**20, f"only {given_back / 2**20:.0f} MiB went back"
    assert all(len(chunk) == 64 * 1024 for chunk in kept)


def test_a_turn_holds_the_lock_and_gives_the_heap_back_after_it_even_on_error(monkeypatch) -> None:
    given_back: list[bool] = []
    loaded = LoadedModel(model=None, tokenizer=None, name="m", architecture="decoder", device="cpu")
    monkeypatch.setattr(heap, "give_back_free_heap", lambda: given_back.append(loaded.lock.locked()))
    with loaded.turn() as turn:
        assert turn is loaded and loaded.lock.locked() and not given_back
    with pytest.raises(ValueError), loaded.turn():
        raise ValueError("a bad input")
    assert given_back == [False, False]                     # after each turn, with the lock already let go
    assert loaded.lock.acquire(timeout=1)


def test_a_turn_waits_for_the_request_holding_the_model() -> None:
    loaded = LoadedModel(model=None, tokenizer=None, name="m", architecture="decoder", device="cpu")
    inside = threading.Event()
    order: list[str] = []

    def other() -> None:
        with loaded.turn():
            order.append("second")

    with loaded.turn():
        worker = threading.Thread(target=other)
        worker.start()
        inside.wait(0.2)
        order.append("first")
    worker.join(5)
    assert order == ["first", "second"]
