"""Speak the browser's queue protocol (POST /gradio_api/queue/join, then read /gradio_api/queue/data) for one session.

The layer/head/view switches are UI events without a public API (api_visibility="private"): the page calls them by
fn_index with its session hash, and so does this helper, so a test can drive them exactly as a browser would.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from reliability.outcomes import QUEUE_FULL_MESSAGE, Outcome, is_clear_message


@dataclass(frozen=True)
class AppLayout:
    """Component ids by elem_id, and each event's fn_index by (component id, trigger) and by api_name."""

    components: dict[str, int]
    events: dict[tuple[int, str], int]
    api: dict[str, int]
    inputs: dict[int, list[int]]
    trigger_after: dict[int, int | None]
    outputs: dict[int, list[int]]
    initial: dict[str, Any]          # elem_id -> the value the page starts with (what a browser first sends)

    @classmethod
    def fetch(cls, port: int) -> "AppLayout":
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/config")
            config = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        components = {
            component["props"]["elem_id"]: component["id"]
            for component in config["components"]
            if component.get("props", {}).get("elem_id")
        }
        initial = {
            component["props"]["elem_id"]: component["props"].get("value")
            for component in config["components"]
            if component.get("props", {}).get("elem_id")
        }
        events: dict[tuple[int, str], int] = {}
        api: dict[str, int] = {}
        inputs: dict[int, list[int]] = {}
        trigger_after: dict[int, int | None] = {}
        outputs: dict[int, list[int]] = {}
        for index, dependency in enumerate(config["dependencies"]):
            fn_index = dependency.get("id", index)
            inputs[fn_index] = list(dependency.get("inputs", []))
            outputs[fn_index] = list(dependency.get("outputs", []))
            trigger_after[fn_index] = dependency.get("trigger_after")
            for target_id, trigger in dependency.get("targets", []):
                events.setdefault((target_id, trigger), fn_index)
            if dependency.get("api_name"):
                api[str(dependency["api_name"]).strip("/")] = fn_index
        return cls(components, events, api, inputs, trigger_after, outputs, initial)

    def event_of(self, elem_id: str, trigger: str = "input") -> int:
        """fn_index of the event `trigger` on the component with `elem_id` (e.g. 'gen-layer', 'input')."""
        return self.events[(self.components[elem_id], trigger)]

    def output_of(self, fn_index: int, elem_id: str, data: Any) -> Any:
        """What event `fn_index` sent to the component with `elem_id`, from the data list of its response
        (the wire keeps the event's output order; handlers return updates keyed by component)."""
        return data[self.outputs[fn_index].index(self.components[elem_id])]

    def chained_after(self, api_name: str, updating: str | None = None) -> int:
        """fn_index of the event the page runs after `api_name` succeeds; with `updating` (an elem_id, e.g.
        'qa-plot' for the attention panel's refresh), the one among them that updates that component."""
        run_index = self.api[api_name.strip("/")]
        for fn_index, parent in self.trigger_after.items():
            if parent != run_index:
                continue
            if updating is None or self.components[updating] in self.outputs[fn_index]:
                return fn_index
        raise KeyError(f"no event chained after {api_name} updates {updating}")


class QueueSession:
    """One browser session: a session hash and requests made through the queue, as the page makes them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.session_hash = uuid.uuid4().hex[:11]

    def run(self, fn_index: int, data: list[Any], timeout: float = 60.0) -> Outcome:
        started = time.perf_counter()
        body = json.dumps(
            {"data": data, "fn_index": fn_index, "session_hash": self.session_hash, "event_data": None,
             "trigger_id": None},
            allow_nan=True,
        )
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("POST", "/gradio_api/queue/join", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read().decode("utf-8", errors="replace")
            if response.status == 503 and QUEUE_FULL_MESSAGE in payload:
                return Outcome("queue_full", time.perf_counter() - started, payload)
            if response.status != 200:
                return Outcome("failure", time.perf_counter() - started, f"HTTP {response.status}: {payload[:300]}")
            event_id = json.loads(payload)["event_id"]
            connection.request("GET", f"/gradio_api/queue/data?session_hash={self.session_hash}")
            response = connection.getresponse()
            while True:
                line = response.readline()
                if not line:
                    return Outcome("failure", time.perf_counter() - started, "the event stream closed early")
                text = line.decode("utf-8", errors="replace").strip()
                if not text.startswith("data:"):
                    continue
                message = json.loads(text[5:])
                if message.get("event_id") not in (None, event_id):
                    continue
                if message.get("msg") == "process_completed":
                    return self._completed(message, time.perf_counter() - started)
                if message.get("msg") == "unexpected_error":
                    return Outcome("failure", time.perf_counter() - started, str(message.get("message")))
        except (TimeoutError, OSError) as error:
            return Outcome("failure", time.perf_counter() - started, f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    @staticmethod
    def _completed(message: dict[str, Any], seconds: float) -> Outcome:
        output = message.get("output") or {}
        if message.get("success"):
            return Outcome("ok", seconds, value=output.get("data"))
        error = output.get("error")
        return Outcome("clear_error" if is_clear_message(error) else "failure", seconds, str(error))
