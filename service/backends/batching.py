"""Requests that need the same kind of model call at the same time share one call; each gets its own answer.

A request announces itself (`arrival()`) before it takes the model's lock and runs its own code under it, as
alone. When it reaches the shared call, it queues a job (`Arrival.submit`, lock held):
- no other request is on its way to the lock (or max_batch jobs are queued): it takes its own job and the oldest
  waiting ones, up to max_batch, runs them in ONE call (run_batch) and goes on with its answer;
- else it lets go of the lock while it waits, so those requests can reach their own job; the last of them leads.
Nothing waits for company: a lone request leads at once, and jobs gather only while requests are already on
their way. After its answer a request takes the lock back, so the rest of its code runs under the lock too.

Results and errors stay per job: when a batch call raises, each of its jobs runs alone, so one bad job fails alone.
`ATTENTION_ATLAS_MAX_BATCH=1` turns batching off (every job alone, as before batching: the benchmark's baseline).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

DEFAULT_MAX_BATCH = 16               # Gemma-3-270M sentiment: 16 × ~30 own tokens over the ~90-token cached prefix
MAX_BATCH_VARIABLE = "ATTENTION_ATLAS_MAX_BATCH"


def max_batch_from_environment() -> int:
    """ATTENTION_ATLAS_MAX_BATCH when set (a whole number ≥ 1), else DEFAULT_MAX_BATCH."""
    value = os.environ.get(MAX_BATCH_VARIABLE, "").strip()
    if not value:
        return DEFAULT_MAX_BATCH
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MAX_BATCH_VARIABLE} must be a whole number ≥ 1 (1 turns batching off), got {value!r}")
    return int(value)


class _Waiting(Generic[Job, Result]):
    """One queued job and, once its batch ran, its result or error."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None

    def answer(self) -> Result:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  (set before done)


class Arrival(Generic[Job, Result]):
    """A request on its way to the lock: counted until its job is queued or the request ends."""

    def __init__(self, batcher: "Batcher[Job, Result]") -> None:
        self.batcher = batcher
        self.counted = True

    def submit(self, job: Job) -> Result:
        """The job's result (its error raised here), run alone or with others; call with the lock held."""
        return self.batcher._submit(job, self)


class Batcher(Generic[Job, Result]):
    """run_batch(jobs) → their results in order, called with `lock` (the model's) held."""

    def __init__(self, lock: threading.Lock, run_batch: Callable[[list[Job]], list[Result]],
                 max_batch: int | None = None) -> None:
        self.lock = lock
        self.run_batch = run_batch
        self.max_batch = max_batch if max_batch is not None else max_batch_from_environment()
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        self._queue: list[_Waiting[Job, Result]] = []
        self._coming = 0                               # arrivals whose job is not queued yet
        self._state = threading.Condition(threading.Lock())   # taken after `lock`, never before it
        self.batch_sizes: list[int] = []               # every batch run so far (tests, the benchmark)

    @contextlib.contextmanager
    def arrival(self) -> Iterator[Arrival[Job, Result]]:
        """Count a request as coming, from before it takes the lock until its job is queued (or it ends)."""
        arrival: Arrival[Job, Result] = Arrival(self)
        with self._state:
            self._coming += 1
        try:
            yield arrival
        finally:
            with self._state:
                self._left(arrival)

    def waiting(self) -> int:
        """Jobs queued now, not yet taken into a batch."""
        with self._state:
            return len(self._queue)

    def coming(self) -> int:
        """Requests announced whose job is not queued yet."""
        with self._state:
            return self._coming

    def _left(self, arrival: Arrival[Job, Result]) -> None:
        """The arrival is no longer on its way (hold _state); waiting jobs may have to lead now."""
        if arrival.counted:
            arrival.counted = False
            self._coming -= 1
            self._state.notify_all()

    def _submit(self, job: Job, arrival: Arrival[Job, Result]) -> Result:
        mine: _Waiting[Job, Result] = _Waiting(job)
        with self._state:
            self._queue.append(mine)
            self._left(arrival)
        while True:                                    # this thread holds `lock` here
            with self._state:
                if mine.done:
                    return mine.answer()
                batch = self._take(mine) if self._coming == 0 or len(self._queue) >= self.max_batch else None
            if batch is not None:
                self._run(batch)
                return mine.answer()
            self.lock.release()                        # let the requests on their way reach their own job
            try:
                with self._state:
                    self._state.wait_for(lambda: mine.done or self._coming == 0)
            finally:
                self.lock.acquire()

    def _take(self, mine: _Waiting[Job, Result]) -> list[_Waiting[Job, Result]]:
        """`mine` and the oldest other queued jobs, up to max_batch, out of the queue (hold _state)."""
        others = [waiting for waiting in self._queue if waiting is not mine][: self.max_batch - 1]
        batch = [mine, *others]
        self._queue = [waiting for waiting in self._queue if all(waiting is not taken for taken in batch)]
        return batch

    def _run(self, batch: list[_Waiting[Job, Result]]) -> None:
        """One call for the batch (lock held); when it raises, one call per job, so each error stays its own."""
        self.batch_sizes.append(len(batch))
        try:
            results = self.run_batch([waiting.job for waiting in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} jobs gave {len(results)} results")
            for waiting, result in zip(batch, results):
                waiting.result = result
        except BaseException as error:  # noqa: BLE001 - every error is handed to its job's own thread
            if len(batch) == 1:
                batch[0].error = error
            else:
                for waiting in batch:
                    try:
                        waiting.result = self.run_batch([waiting.job])[0]
                    except BaseException as own_error:  # noqa: BLE001
                        waiting.error = own_error
        finally:
            with self._state:
                for waiting in batch:
                    waiting.done = True
                self._state.notify_all()
