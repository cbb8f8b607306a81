"""Requests that need the same kind of model call at the same time share one call; each gets its own answer.

A request announces itself (`arrival()`) before it takes the model's lock and runs its own code under it, as
alone. When it reaches the shared call, it queues a job (`Arrival.submit`, lock held):
- no other request is on its way to the lock (or max_batch jobs are queued) and no one leads: it leads. It hands
  the oldest queued jobs, up to max_batch, to a Session, which runs them; with `session` (continuous batching: a
  decoding loop) the leader then steps the session, and between steps more queued jobs join it and every job that
  has finished is answered at once. While requests are on their way, or answered ones wait to take the lock back,
  the leader lets go of the lock between steps. When its own job is done it hands the lead to a waiting request.
- else it lets go of the lock while it waits, so those requests can reach their own job; the last of them leads.
Nothing waits for company: a lone request leads at once, and jobs gather only while requests are already on
their way. After its answer a request takes the lock back, so the rest of its code runs under the lock too.

Results and errors stay per job: when a session call raises, each of its unfinished jobs runs alone (run_batch
with that job only), so one bad job fails alone. `ATTENTION_ATLAS_MAX_BATCH=1` turns batching off (every job
alone, as before batching: the benchmark's baseline).

Identical jobs run once. With `twin_key` (a job's key, equal for jobs that get the same result: a greedy call on
the same model and prompt; None for a job never shared), a job whose key matches one queued or running, not yet
answered (a class that clicked the same example), is not queued: it waits as that job's twin and is handed the
same result or error when that job is answered. Batching off turns this off too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, Protocol, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

DEFAULT_MAX_BATCH = 16               # Gemma-3-270M sentiment: 16 × ~30 own tokens over the ~90-token cached prefix
MAX_BATCH_VARIABLE = "ATTENTION_ATLAS_MAX_BATCH"
PAUSE_SECONDS = 1.0                  # the longest a leader lets go of the lock between two steps


def max_batch_from_environment() -> int:
    """ATTENTION_ATLAS_MAX_BATCH when set (a whole number ≥ 1), else DEFAULT_MAX_BATCH."""
    value = os.environ.get(MAX_BATCH_VARIABLE, "").strip()
    if not value:
        return DEFAULT_MAX_BATCH
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MAX_BATCH_VARIABLE} must be a whole number ≥ 1 (1 turns batching off), got {value!r}")
    return int(value)


class Session(Protocol):
    """Jobs that run over several steps, which other jobs may join between steps. Called with the lock held.

    offer(tickets, jobs): take the first k jobs (k ≥ 1 when nothing is running) and start them; returns k.
    step(): one step of every running job. busy(): whether a job is still running.
    finished(): (ticket, result, error) of every job that ended since the last call (one of result / error).
    """

    def offer(self, tickets: list[int], jobs: list) -> int: ...  # type: ignore[type-arg]

    def step(self) -> None: ...

    def busy(self) -> bool: ...

    def finished(self) -> list[tuple[int, object, BaseException | None]]: ...


class OneCall(Generic[Job, Result]):
    """The session of a one-shot batch call: run_batch(jobs) → their results, all finished at once."""

    def __init__(self, run_batch: Callable[[list[Job]], list[Result]]) -> None:
        self.run_batch = run_batch
        self._finished: list[tuple[int, object, BaseException | None]] = []

    def offer(self, tickets: list[int], jobs: list[Job]) -> int:
        results = self.run_batch(jobs)
        if len(results) != len(jobs):
            raise RuntimeError(f"a batch of {len(jobs)} jobs gave {len(results)} results")
        self._finished += [(ticket, result, None) for ticket, result in zip(tickets, results)]
        return len(jobs)

    def step(self) -> None:
        pass

    def busy(self) -> bool:
        return False

    def finished(self) -> list[tuple[int, object, BaseException | None]]:
        done, self._finished = self._finished, []
        return done


def _stopped_with_jobs_unanswered() -> None:
    raise RuntimeError("a session stopped with jobs it had taken still unanswered")


class _Waiting(Generic[Job, Result]):
    """One queued job and, once it ran, its result or error."""

    def __init__(self, job: Job, ticket: int) -> None:
        self.job = job
        self.ticket = ticket
        self.done = False
        self.returning = False                         # answered while away: counted until it has the lock back
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.key: Hashable | None = None               # its twin key, while twins may find it
        self.twins: list[_Waiting[Job, Result]] = []   # identical jobs answered with it

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
    """Jobs of requests holding `lock` (the model's) run together: run_batch(jobs) → their results in order, or,
    with `session` (and max_batch > 1), a new Session per run of jobs that others join while it steps; with
    `twin_key` (and max_batch > 1), a job identical to one not yet answered waits for that one's result."""

    def __init__(self, lock: threading.Lock, run_batch: Callable[[list[Job]], list[Result]],
                 max_batch: int | None = None, session: Callable[[], Session] | None = None,
                 twin_key: Callable[[Job], Hashable | None] | None = None) -> None:
        self.lock = lock
        self.run_batch = run_batch
        self.max_batch = max_batch if max_batch is not None else max_batch_from_environment()
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        self.new_session: Callable[[], Session] = (
            session if session is not None and self.max_batch > 1 else lambda: OneCall(run_batch))
        self.twin_key = twin_key if self.max_batch > 1 else None
        self._unanswered: dict[Hashable, _Waiting[Job, Result]] = {}   # by twin key: jobs twins may wait for
        self._queue: list[_Waiting[Job, Result]] = []
        self._running: dict[int, _Waiting[Job, Result]] = {}   # by ticket: jobs the session took, not answered
        self._tickets = itertools.count()
        self._session: Session | None = None
        self._leading = False                          # a request is leading (it may have let go of the lock)
        self._leader: _Waiting[Job, Result] | None = None
        self._coming = 0                               # arrivals whose job is not queued yet
        self._returning = 0                            # answered requests that have not taken the lock back
        self._state = threading.Condition(threading.Lock())   # taken after `lock`, never before it
        self.batch_sizes: list[int] = []               # jobs taken at each offer (tests, the benchmark)
        self.twins_answered = 0                        # jobs answered with an identical one's result

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

    def running(self) -> int:
        """Jobs a session has taken and not yet answered."""
        with self._state:
            return len(self._running)

    def _left(self, arrival: Arrival[Job, Result]) -> None:
        """The arrival is no longer on its way (hold _state); waiting jobs may have to lead now."""
        if arrival.counted:
            arrival.counted = False
            self._coming -= 1
            self._state.notify_all()

    def _may_lead(self) -> bool:
        """Whether a waiting request should lead now (hold _state): no one leads, and a session runs that needs a
        leader, or no request is on its way (or the queue is full)."""
        return not self._leading and (self._session is not None or self._coming == 0
                                      or len(self._queue) >= self.max_batch)

    def _submit(self, job: Job, arrival: Arrival[Job, Result]) -> Result:
        key = self.twin_key(job) if self.twin_key is not None else None
        with self._state:
            mine: _Waiting[Job, Result] = _Waiting(job, next(self._tickets))
            original = self._unanswered.get(key) if key is not None else None
            if original is not None:
                original.twins.append(mine)
            else:
                self._queue.append(mine)
                if key is not None:
                    mine.key = key
                    self._unanswered[key] = mine
            self._left(arrival)
        if original is not None:
            return self._wait_as_twin(mine)
        while True:                                    # this thread holds `lock` here
            with self._state:
                if mine.done:
                    return self._back(mine)
                lead = self._may_lead()
                if lead:
                    self._leading, self._leader = True, mine
            if lead:
                self._lead(mine)
                continue
            self.lock.release()                        # let the requests on their way reach their own job
            try:
                with self._state:
                    self._state.wait_for(lambda: mine.done or self._may_lead())
            finally:
                self.lock.acquire()

    def _wait_as_twin(self, mine: _Waiting[Job, Result]) -> Result:
        """Wait, without the lock, until the identical job `mine` waits for is answered; then its result (lock held
        again, as on return from every submit)."""
        self.lock.release()
        try:
            with self._state:
                self._state.wait_for(lambda: mine.done)
        finally:
            self.lock.acquire()
        with self._state:
            return self._back(mine)

    def _back(self, mine: _Waiting[Job, Result]) -> Result:
        """An answered job whose request has the lock back (hold _state): no longer counted as returning; its
        result (its error raised here)."""
        if mine.returning:
            mine.returning = False
            self._returning -= 1
            self._state.notify_all()
        return mine.answer()

    def _lead(self, mine: _Waiting[Job, Result]) -> None:
        """Run the session until `mine` is answered (lock held; _leading set): offer it the queued jobs, step it,
        answer what finished; let go of the lock between steps while others need it."""
        try:
            while True:
                with self._state:
                    if self._session is None:
                        self._session = self.new_session()
                    session = self._session
                if session.busy():
                    self._pause_for_others()           # requests on their way queue their jobs; answered ones end
                with self._state:
                    offered = self._queue[: max(0, self.max_batch - len(self._running))]
                    self._queue = self._queue[len(offered):]
                if offered:
                    self._call(session, lambda: session.offer([waiting.ticket for waiting in offered],
                                                              [waiting.job for waiting in offered]), offered)
                if mine.done:
                    return
                if self._session is not session:                # it failed and was dropped: a new one
                    continue
                if not session.busy():
                    if not offered:                             # `mine` is neither queued nor running
                        self._call(session, _stopped_with_jobs_unanswered, [])
                    continue
                self._call(session, session.step, [])
                if mine.done:
                    return
        finally:
            with self._state:
                if self._session is not None and not self._session.busy():
                    self._session = None
                self._leading, self._leader = False, None
                self._state.notify_all()

    def _call(self, session: Session, call: Callable[[], object], offered: list[_Waiting[Job, Result]]) -> None:
        """session.offer (of `offered`) or session.step, then answer every finished job. When it raises, the
        session is dropped and each of its unfinished jobs runs alone, so each error stays its own."""
        try:
            taken = call()
            if offered:
                if not isinstance(taken, int) or not 0 <= taken <= len(offered):
                    raise RuntimeError(f"a session offered {len(offered)} jobs said it took {taken!r}")
                if taken == 0 and not session.busy():
                    raise RuntimeError("a session took no job while nothing was running")
        except BaseException as error:  # noqa: BLE001 - every error is handed to its job's own thread
            if offered:
                self.batch_sizes.append(len(offered))
            with self._state:
                stranded = [*self._running.values(), *offered]
            self._strand(stranded, error)
            return
        if offered:
            with self._state:
                self._queue = offered[taken:] + self._queue            # not taken yet: first in line again
                self._running.update((waiting.ticket, waiting) for waiting in offered[:taken])
            if taken:
                self.batch_sizes.append(taken)
        for ticket, result, error in session.finished():
            with self._state:
                waiting = self._running.pop(ticket)
            self._answer(waiting, result, error)

    def _strand(self, stranded: list[_Waiting[Job, Result]], error: BaseException) -> None:
        """The session failed: drop it; a lone job gets its error, else each job runs alone (run_batch)."""
        with self._state:
            self._session = None
            self._running = {}
        if len(stranded) == 1:
            self._answer(stranded[0], None, error)
            return
        for waiting in stranded:
            try:
                self._answer(waiting, self.run_batch([waiting.job])[0], None)
            except BaseException as own_error:  # noqa: BLE001
                self._answer(waiting, None, own_error)

    def _answer(self, waiting: _Waiting[Job, Result], result: object, error: BaseException | None) -> None:
        """Hand a job, and its twins, its result or error and wake their requests."""
        with self._state:
            for answered in (waiting, *waiting.twins):
                answered.result, answered.error = result, error  # type: ignore[assignment]
                answered.done = True
                if answered is not self._leader:
                    answered.returning = True
                    self._returning += 1
            self.twins_answered += len(waiting.twins)
            if waiting.key is not None and self._unanswered.get(waiting.key) is waiting:
                del self._unanswered[waiting.key]
            self._state.notify_all()

    def _pause_for_others(self) -> None:
        """Between two steps: while requests are on their way or answered ones want the lock back, let go of it
        (at most PAUSE_SECONDS), so they queue their jobs or finish theirs; then take it back."""
        with self._state:
            if self._coming == 0 and self._returning == 0:
                return
        self.lock.release()
        try:
            with self._state:
                self._state.wait_for(lambda: self._coming == 0 and self._returning == 0, timeout=PAUSE_SECONDS)
        finally:
            self.lock.acquire()
