"""A service call gives back the OpenMP team its calling thread made (service/threads.py): request threads live on
in a server, and their idle teams made libgomp stop spinning, so every other thread's model ran ~30% slower."""

import os
import threading

import pytest
import torch

from service import ModelService
from service.threads import release_thread_team

pytestmark = pytest.mark.skipif(torch.get_num_threads() < 2 or not os.path.isdir("/proc/self/task"),
                                reason="needs libgomp teams (2+ torch threads) and /proc")
WORKERS = torch.get_num_threads() - 1        # a team: the thread itself and this many workers


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _parallel_op() -> None:
    torch.ones(4_000_000).mul_(2.0)          # big enough for an intra-op parallel region


def _run_parallel_and_count() -> int:
    _parallel_op()                                                    # the thread now masters a team
    return _threads()


def _in_a_thread_that_lives_on(steps) -> list[int]:
    counts: list[int] = []
    thread = threading.Thread(target=lambda: counts.extend(step() for step in steps))
    thread.start()
    thread.join(timeout=120)
    return counts


def _threads_given_back(steps, tries: int = 3) -> int:
    """How many threads the process had fewer after the last step than after the first, in a thread that lives on:
    the median of `tries` tries, so a thread another test left, ending (with its team) between two counts, skews
    one try only."""
    given_back = sorted(first - last for first, last in (_in_a_thread_that_lives_on(steps) for _ in range(tries)))
    return given_back[len(given_back) // 2]


def test_release_gives_back_the_calling_threads_team() -> None:
    def release_and_count() -> int:
        assert release_thread_team()
        return _threads()

    assert _threads_given_back([_run_parallel_and_count, release_and_count]) == WORKERS


@pytest.mark.parametrize("task,inputs", [
    ("generation", {"prompt": "The quick brown fox", "max_new_tokens": 3}),
    ("qa", {"context": "北京是中国的首都。", "question": "中国的首都是哪里？"}),
    ("translation", {"text": "Good morning"}),
    ("sentiment", {"text": "I loved this movie."}),
])
def test_a_service_call_leaves_no_idle_team_in_its_thread(task, inputs) -> None:
    service = ModelService("tiny")
    service.run_task(task, inputs)                                    # load the models and their tokenizers first

    def call_and_count() -> int:
        service.run_task(task, inputs)
        return _threads()

    assert _threads_given_back([_run_parallel_and_count, call_and_count]) == WORKERS


def test_a_view_computing_a_long_results_layer_leaves_no_idle_team_in_its_thread() -> None:
    from service.attention import on_demand
    from tests.explain_models import tiny_gemma

    model, _ = tiny_gemma()
    with torch.inference_mode():
        results = [on_demand.keep_queries_keys(model, torch.randint(6, 60, (1, 48))) for _ in range(3)]

    def view_and_count() -> int:
        results.pop().layer(1)          # what a layer switch in the app computes (a fresh result: none computed yet)
        return _threads()

    assert _threads_given_back([_run_parallel_and_count, view_and_count]) == WORKERS
