"""Concurrency and streaming: parallel requests match solo runs; seeds repeat; closing a stream stops it at once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from service import AttentionResult, InvalidInputError, ModelService
from service.models.tiny import load_tiny


@pytest.fixture(scope="module")
def tiny() -> ModelService:
    return ModelService("tiny")


def _run_together(calls: list) -> list:
    """Start all calls at the same moment on their own threads; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as error:  # noqa: BLE001 - surfaced by the assertion below
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _same(first: AttentionResult, second: AttentionResult) -> None:
    assert first.prediction == second.prediction
    assert first.tokens() == second.tokens()
    np.testing.assert_array_equal(first.self_attention(), second.self_attention())


def test_two_generations_at_once_match_their_solo_runs(tiny: ModelService) -> None:
    greedy = lambda: tiny.generate("The quick brown fox", max_new_tokens=6, min_new_tokens=6)  # noqa: E731
    sampled = lambda: tiny.generate(  # noqa: E731
        "Attention lets every token", max_new_tokens=6, min_new_tokens=6, temperature=1.0, top_k=50, seed=7
    )
    alone = [greedy(), sampled()]
    together = _run_together([greedy, sampled])
    for solo, parallel in zip(alone, together):
        assert isinstance(parallel, AttentionResult), parallel
        _same(solo, parallel)


def test_different_tasks_at_once_match_their_solo_runs(tiny: ModelService) -> None:
    calls = [
        lambda: tiny.generate("Once upon a time", max_new_tokens=5, min_new_tokens=5),
        lambda: tiny.answer("Feynman worked at Caltech in Pasadena.", "Where did Feynman work?"),
        lambda: tiny.classify("This film was boring."),
        lambda: tiny.translate("机器学习正在改变世界。"),
    ]
    alone = [call() for call in calls]
    together = _run_together(calls + calls)  # each task twice, eight threads
    for index, parallel in enumerate(together):
        assert isinstance(parallel, AttentionResult), parallel
        _same(alone[index % 4], parallel)
    np.testing.assert_array_equal(alone[3].cross_attention, together[3].cross_attention)


def test_requests_leave_the_fast_kernel_in_place(tiny: ModelService) -> None:
    tiny.generate("Hello", max_new_tokens=2, min_new_tokens=2)
    tiny.classify("Hello")
    for key in ("generation", "sentiment"):
        assert load_tiny(key).model.config._attn_implementation == "sdpa"


def test_the_same_seed_gives_the_same_text_and_greedy_ignores_it(tiny: ModelService) -> None:
    def sample(seed: int, temperature: float = 1.5) -> str:
        result = tiny.generate("The", max_new_tokens=12, min_new_tokens=12, temperature=temperature, seed=seed)
        return result.prediction["text"]

    assert sample(3) == sample(3)
    assert len({sample(seed) for seed in range(4)}) > 1
    assert sample(1, temperature=0.0) == sample(2, temperature=0.0)


def test_stream_yields_growing_text_then_the_same_result_as_generate(tiny: ModelService) -> None:
    items = list(tiny.stream_generate("The quick brown fox", max_new_tokens=6, min_new_tokens=6))
    texts, final = items[:-1], items[-1]
    assert all(isinstance(text, str) for text in texts) and texts
    assert isinstance(final, AttentionResult)
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    assert texts[-1] == final.prediction["text"]
    _same(final, tiny.generate("The quick brown fox", max_new_tokens=6, min_new_tokens=6))


def test_closing_a_stream_stops_generation_and_frees_the_model(tiny: ModelService) -> None:
    stream = tiny.stream_generate("Once upon a time", max_new_tokens=200, min_new_tokens=200)
    first = next(stream)
    assert isinstance(first, str)
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 10.0
    assert not any(thread.name == "atlas-generate" and thread.is_alive() for thread in threading.enumerate())
    lock = load_tiny("generation").lock
    assert lock.acquire(blocking=False), "the model lock must be free once close() returns"
    lock.release()
    assert tiny.generate("Still", max_new_tokens=2, min_new_tokens=2).task == "generation"


def test_a_stream_error_reaches_the_consumer(tiny: ModelService) -> None:
    stream = tiny.stream_generate("机器学习" * 450, max_new_tokens=10)
    with pytest.raises(InvalidInputError, match="reads at most"):
        next(stream)


def test_finishing_early_ends_generation_and_still_returns_the_attention_of_the_text_so_far(
    tiny: ModelService,
) -> None:
    finish = threading.Event()
    stream = tiny.stream_generate("Once upon a time", max_new_tokens=200, min_new_tokens=200, finish_early=finish)
    texts = [next(stream), next(stream)]
    finish.set()
    rest = list(stream)
    final = rest[-1]
    assert isinstance(final, AttentionResult) and all(isinstance(text, str) for text in rest[:-1])
    generated = next(segment for segment in final.segments if segment.name == "generated")
    written = generated.end - generated.start
    assert 2 <= written < 200, f"{written} tokens were written after Stop was asked for at the second"
    assert final.prediction["text"].startswith(texts[-1])
    assert final.self_attention().shape[-1] == len(final.tokens())
    assert any("Stopped on request" in notice for notice in final.notices)
    lock = load_tiny("generation").lock
    assert lock.acquire(blocking=False), "the model is free once the result is out"
    lock.release()


@pytest.mark.parametrize("task, call", [
    ("qa", lambda service: service.answer("Ada wrote the first program.", "Who wrote it?")),
    ("translation", lambda service: service.translate("Good morning.", "en-zh")),
    ("sentiment", lambda service: service.classify("I loved it.")),
])
def test_demonstrations_are_chosen_on_the_models_turn(task, call, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing runs the sentence encoder (a model forward) on the embedded profile; beside the LM's forward on a
    2-core CPU both stalled, so it holds the LM's lock like every model call."""
    service = ModelService("tiny-fewshot")
    call(service)                                                     # load first
    selector, loaded = service.backend.selector, service.backend.model(service.backend.generation_key)
    held: list[bool] = []
    name = {"qa": "for_qa", "translation": "for_translation", "sentiment": "for_sentiment"}[task]
    real = getattr(selector, name)
    monkeypatch.setattr(selector, name, lambda *args, **kwargs: held.append(loaded.lock.locked()) or real(*args,
                                                                                                        **kwargs))
    monkeypatch.setattr(service.backend, "_chooses", lambda task, zero_shot: not zero_shot)   # every task chooses
    call(service)
    assert held == [True]
