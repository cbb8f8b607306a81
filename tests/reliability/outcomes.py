"""Call an app endpoint through gradio_client and sort what came back: answer, queue full, clear error or failure."""

from __future__ import annotations

import concurrent.futures
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Literal

# What gradio answers when its bounded queue is full: HTTP 503 from /gradio_api/queue/join, which gradio_client
# turns into `gradio_client.utils.QueueError("Queue is full! Please try again.")`; the browser shows
# "Queue is full. Max size is N and size is M." Documented in docs/reliability.md.
QUEUE_FULL_MESSAGE = "Queue is full"

# Answers that are not a clear error for the user: gradio's "no details" notice (a handler raised something other than
# gr.Error and show_error is off), a traceback, and the app's own catch-all for unexpected exceptions (demos.user_errors),
# which means a bug was hit rather than a user mistake reported.
SILENT_ERROR_MARKERS = (
    "has not enabled verbose error reporting",
    "Traceback (most recent call last)",
    "Error raised.",
    "Something went wrong inside the app",
)

OutcomeKind = Literal["ok", "queue_full", "clear_error", "failure"]


@dataclass
class Outcome:
    """One request: how it ended, how long it took (seconds), and the answer or the message."""

    kind: OutcomeKind
    seconds: float
    detail: str = ""
    value: Any = None


def is_clear_message(message: Any) -> bool:
    """A user-facing sentence: non-empty text, several words, no traceback, not gradio's 'no details' notice."""
    if not isinstance(message, str):
        return False
    text = message.strip()
    if len(text.split()) < 3:
        return False
    return not any(marker in text for marker in SILENT_ERROR_MARKERS) and 'File "' not in text


# How long a test client waits to connect and for each HTTP answer (config, API info, queue join). gradio_client's
# default is httpx's 5 s, which measures the test process more than the server: 40 user threads in one Python process
# each build two SSL contexts (~55 ms, GIL held) while connecting, so a thread can sit 5 s waiting for its turn on an
# idle server (measured: 40 clients at once, median 5.0 s, max 5.9 s). A browser waits far longer. Reads stay bounded
# (the SSE stream gets a heartbeat every 15 s), so a server that stops answering is still caught.
CLIENT_TIMEOUT_SECONDS = 60.0
CLIENT_CONNECT_SECONDS = 30.0


def connect(url: str) -> Any:
    """A gradio_client.Client for `url` with the timeouts above; raises what gradio_client raises if it cannot."""
    import httpx
    from gradio_client import Client

    timeout = httpx.Timeout(CLIENT_TIMEOUT_SECONDS, connect=CLIENT_CONNECT_SECONDS)
    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": timeout})


def call(client: Any, api_name: str, *args: Any, timeout: float = 60.0) -> Outcome:
    """Submit one request and wait at most `timeout` seconds; never raises for what the server did."""
    from gradio_client.exceptions import AppError, ValidationError
    from gradio_client.utils import QueueError

    started = time.perf_counter()
    try:
        job = client.submit(*args, api_name=api_name)
        value = job.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        return Outcome("failure", time.perf_counter() - started, f"no answer within {timeout:.0f} s (hung)")
    except QueueError as error:
        kind: OutcomeKind = "queue_full" if QUEUE_FULL_MESSAGE in str(error) else "failure"
        return Outcome(kind, time.perf_counter() - started, str(error))
    except (AppError, ValidationError) as error:
        message = getattr(error, "message", None) or str(error)
        kind = "clear_error" if is_clear_message(message) else "failure"
        return Outcome(kind, time.perf_counter() - started, str(message))
    except Exception as error:  # noqa: BLE001 - anything else is exactly what these tests look for
        detail = f"{type(error).__name__}: {error}"
        if QUEUE_FULL_MESSAGE in detail:
            return Outcome("queue_full", time.perf_counter() - started, detail)
        return Outcome("failure", time.perf_counter() - started, detail)
    return Outcome("ok", time.perf_counter() - started, value=value)


@dataclass
class LatencySummary:
    """Counts and latency percentiles (seconds) of a batch of outcomes."""

    served: int = 0
    queue_full: int = 0
    clear_errors: int = 0
    failures: int = 0
    p50: float = 0.0
    p95: float = 0.0
    worst: float = 0.0
    failure_details: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"served={self.served} queue_full={self.queue_full} clear_errors={self.clear_errors} "
            f"failures={self.failures} p50={self.p50:.3f}s p95={self.p95:.3f}s max={self.worst:.3f}s"
        )


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def summarise(outcomes: list[Outcome]) -> LatencySummary:
    """Counts per kind; latency percentiles over the answered requests."""
    answered = [outcome.seconds for outcome in outcomes if outcome.kind in ("ok", "clear_error")]
    summary = LatencySummary(
        served=sum(outcome.kind == "ok" for outcome in outcomes),
        queue_full=sum(outcome.kind == "queue_full" for outcome in outcomes),
        clear_errors=sum(outcome.kind == "clear_error" for outcome in outcomes),
        failures=sum(outcome.kind == "failure" for outcome in outcomes),
        p50=statistics.median(answered) if answered else 0.0,
        p95=percentile(answered, 0.95),
        worst=max(answered, default=0.0),
    )
    summary.failure_details = [outcome.detail for outcome in outcomes if outcome.kind == "failure"][:10]
    return summary


def raw_call(port: int, api_name: str, arguments: list[Any], timeout: float = 60.0) -> Outcome:
    """Call /gradio_api/call/<api_name> with hand-written JSON, so NaN and Infinity reach the server as numbers.

    (gradio_client cannot send them: httpx encodes JSON with allow_nan=False.)
    """
    import http.client
    import json

    name = api_name.strip("/")
    body = json.dumps({"data": arguments}, allow_nan=True)
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", f"/gradio_api/call/{name}", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read().decode("utf-8", errors="replace")
        if response.status == 503 and QUEUE_FULL_MESSAGE in payload:
            return Outcome("queue_full", time.perf_counter() - started, payload)
        if response.status != 200:
            kind: OutcomeKind = "clear_error" if 400 <= response.status < 500 and is_clear_message(payload) else "failure"
            return Outcome(kind, time.perf_counter() - started, f"HTTP {response.status}: {payload[:300]}")
        event_id = json.loads(payload)["event_id"]
        connection.request("GET", f"/gradio_api/call/{name}/{event_id}")
        response = connection.getresponse()
        stream = response.read().decode("utf-8", errors="replace")
    except (TimeoutError, OSError) as error:
        return Outcome("failure", time.perf_counter() - started, f"{type(error).__name__}: {error}")
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    event, data = "", None
    for block in stream.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") in ("complete", "error"):
            event, data = lines["event"], json.loads(lines.get("data", "null"))
    if event == "complete":
        return Outcome("ok", seconds, value=data)
    if event == "error":
        message = data.get("error") if isinstance(data, dict) else data
        kind = "clear_error" if is_clear_message(message) else "failure"
        return Outcome(kind, seconds, str(message))
    return Outcome("failure", seconds, f"no complete/error event in the stream: {stream[-300:]}")
