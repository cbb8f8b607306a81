"""Fair turns: each visitor may have at most TURNS_PER_VISITOR model requests waiting or running at once.

A visitor is a session: one browser tab, or one gradio_client Client (its session_hash). The count is taken when a
request joins Gradio's queue, not when its handler starts, so requests still waiting count too: Gradio runs a
handler only once a worker is free, far too late to refuse a burst. The count is read from Gradio's own queue
(events waiting in the model concurrency groups plus the jobs running now: Sentiment has its own group, whose
requests batch), so a request leaves it however it ends (answer, error, API cancel, closed tab) and nothing here
can lock a visitor out.

Refusals answer at once, like Gradio's own input validators (HTTP 422): gradio_client raises
`gradio_client.exceptions.ValidationError` with the message, the page shows it under the inputs. Requests already
in the queue keep their place. A script that invents a new session for every request is not held by this; the
password keeps strangers out and the queue's max size bounds the whole.
"""

from __future__ import annotations

import asyncio
from typing import Any

import gradio as gr

from demos import MODEL_CONCURRENCY_IDS

TURNS_PER_VISITOR = 2


def refusal_message(limit: int = TURNS_PER_VISITOR) -> str:
    return (f"You already have {limit} requests waiting or running. Wait until one of them has answered (or stop "
            "it), then try again: everyone gets turns this way.")


class FairTurns:
    """Refuses a visitor's model request when it already has `limit` of them in the queue (waiting or running)."""

    def __init__(self, demo: gr.Blocks, limit: int = TURNS_PER_VISITOR,
                 concurrency_ids: tuple[str, ...] = MODEL_CONCURRENCY_IDS) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.demo = demo
        self.limit = limit
        self.concurrency_ids = tuple(concurrency_ids)
        self._lock = asyncio.Lock()  # joins are counted one at a time: a burst cannot slip past the count

    def model_events(self) -> list[Any]:
        """Gradio's events of the model groups now: waiting in their queues, or running."""
        queue = self.demo._queue
        events = []
        for concurrency_id in self.concurrency_ids:
            waiting = queue.event_queue_per_concurrency_id.get(concurrency_id)
            events += list(waiting.queue) if waiting is not None else []
        events += [event for job in queue.active_jobs if job for event in job]
        return [event for event in events if event.concurrency_id in self.concurrency_ids]

    def held(self, session_hash: str | None) -> int:
        """The visitor's model requests in Gradio's queue now (waiting or running)."""
        return sum(1 for event in self.model_events() if event.session_hash == session_hash)

    def counts(self, body: Any) -> bool:
        """Whether the request in `body` is a model event (the only kind that takes turns)."""
        fn = self.demo.fns.get(getattr(body, "fn_index", None))
        return fn is not None and fn.concurrency_id in self.concurrency_ids and bool(body.session_hash)

    def refusal(self, session_hash: str | None = None) -> list[dict[str, Any]]:
        """The 422 detail gradio_client and the page both read as a validation message (in the visitor's language:
        it never passes through a handler, so the page could not translate it)."""
        from demos.i18n import SESSIONS, translate

        message = translate(refusal_message(self.limit), SESSIONS.get(session_hash))
        return [{"__type__": "validate", "is_valid": False, "message": message, "parameter_name": "request"}]

    def install(self) -> "FairTurns":
        """Count every join of the demo's queue (call after `demo.queue(...)`)."""
        queue = self.demo._queue
        join = queue.push

        async def push(body: Any, request: Any, username: str | None) -> tuple[bool, Any, str]:
            if not self.counts(body):
                return await join(body, request, username)
            async with self._lock:
                if self.held(body.session_hash) >= self.limit:
                    return False, self.refusal(body.session_hash), "validator_error"
                return await join(body, request, username)

        queue.push = push
        return self
