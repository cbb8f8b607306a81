"""A class at once on the real app (slow; the short form of `python -m bench.load`): 30 students press Sentiment at the
same moment, then 20 press Ask (the tab's examples, so identical requests run once; then 20 different questions). Every
one of them gets an answer, and it is the answer their own input gets alone: batching shares the model's calls, never
their results. The timing targets live in `make bench`. (A class larger
than the queue's 32 places plus the 16 running is told "queue full": tests/test_reliability_load.py.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from bench.load import REQUEST_TIMEOUT_SECONDS, class_tasks

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task_key", ["sentiment", "qa", "qa-own"])
def test_a_whole_class_at_once_gets_each_its_own_answer(embedded_app: Any, task_key: str) -> None:
    from gradio_client import Client

    task = class_tasks()[task_key]
    sends = [(task.api_name, task.input_of(index, 0)) for index in range(task.users)]
    alone_client = Client(embedded_app.url, verbose=False, download_files=False)
    alone = {(api_name, inputs): alone_client.predict(*inputs, api_name=api_name)[0]
             for api_name, inputs in dict.fromkeys(sends)}                # each input once, one at a time
    alone_client.close()

    clients = [Client(embedded_app.url, verbose=False, download_files=False) for _ in sends]
    outcomes: list[Any] = [None] * len(sends)
    seconds: list[float] = [0.0] * len(sends)
    start = threading.Barrier(len(sends))

    def student(index: int) -> None:
        api_name, inputs = sends[index]
        start.wait()
        began = time.perf_counter()
        try:
            outcomes[index] = clients[index].submit(*inputs, api_name=api_name).result(
                timeout=REQUEST_TIMEOUT_SECONDS)[0]
        except Exception as error:  # noqa: BLE001 - the assertions below report it
            outcomes[index] = error
        seconds[index] = time.perf_counter() - began

    threads = [threading.Thread(target=student, args=(index,), daemon=True) for index in range(len(sends))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 60)
    for client in clients:
        client.close()
    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    print(f"\nclass load: {len(sends)} {task.name} students at once, p50 {np.percentile(seconds, 50):.2f} s, "
          f"p95 {np.percentile(seconds, 95):.2f} s, {len(errors)} errors")
    assert not errors, f"{len(errors)} students got errors, first: {errors[0]!r}"
    for (api_name, inputs), outcome in zip(sends, outcomes):
        expected = alone[(api_name, inputs)]
        if api_name == "/classify":
            assert outcome["label"] == expected["label"], inputs
            assert outcome["score"] == pytest.approx(expected["score"], abs=1e-4)
        else:
            assert (outcome["answer"], outcome["start"]) == (expected["answer"], expected["start"]), inputs
            assert outcome["score"] == pytest.approx(expected["score"], abs=1e-4)
