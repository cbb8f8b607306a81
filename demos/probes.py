"""The model probes the panel draws from a kept result: the logit lens (per position range) and the head roles.

Both run the generation model (the lens: one forward over the result's ids, ~1–3 s for Gemma on 2 CPU cores; the
roles: one probe per model, kept by the service), so unlike the other views they are not pure redraws. A panel
built with the service adopts each result of that service's generation model; the lens of each range it shows is
computed once and kept next to the result (bounded: a few ranges per result, LENS_ENTRIES in all, least recently
used first), so switching back to a range is a redraw. Entries follow their result: a result the ResultStore drops
takes its lenses with it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

from service.probes.logit_lens import MAX_LENS_POSITIONS
from service.result import AttentionResult

LENS_ENTRIES = 64            # lenses kept in all (one is ~18 layers × 64 positions × 3 candidates: well under 1 MB)
DEFAULT_LENS_POSITIONS = 16
BLOCK_POSITIONS = 32


class ModelProbes:
    """Which service can probe which kept result, and the lenses computed for them."""

    def __init__(self, max_lenses: int = LENS_ENTRIES) -> None:
        self.max_lenses = max_lenses
        self._lock = threading.Lock()
        self._services: dict[int, Any] = {}                      # id(result) -> service (while the result lives)
        self._lenses: OrderedDict[tuple[int, int, int], Any] = OrderedDict()   # (id(result), start, end) -> lens

    def adopt(self, result: AttentionResult, service: Any) -> bool:
        """Let `service` probe `result` when it is a decoder result of the service's own generation model."""
        if not reads(result, service):
            return False
        key = id(result)
        with self._lock:
            if key in self._services:
                return True
            self._services[key] = service
        weakref.finalize(result, self._forget, key)
        return True

    def can_probe(self, result: AttentionResult) -> bool:
        with self._lock:
            return id(result) in self._services

    def has_lens(self, result: AttentionResult, start: int, end: int) -> bool:
        with self._lock:
            return (id(result), start, end) in self._lenses

    def lens(self, result: AttentionResult, start: int, end: int) -> Any:
        """The LogitLens of positions start..end-1 of `result` (computed on first use, then kept)."""
        key = (id(result), int(start), int(end))
        with self._lock:
            if key in self._lenses:
                self._lenses.move_to_end(key)
                return self._lenses[key]
            service = self._services.get(id(result))
        if service is None:
            raise ValueError("this result was not made by a model the panel can probe")
        lens = service.logit_lens(result, start=int(start), end=int(end), k=3)   # runs the model, holds its lock
        with self._lock:
            if id(result) in self._services:       # the result may have gone while the model ran
                self._lenses[key] = lens
                while len(self._lenses) > self.max_lenses:
                    self._lenses.popitem(last=False)
        return lens

    def roles(self, result: AttentionResult) -> list[Any] | None:
        """The head roles of the model behind `result` (the probe runs once per model), or None when unknown."""
        with self._lock:
            service = self._services.get(id(result))
        return None if service is None else service.head_roles()

    def _forget(self, key: int) -> None:
        with self._lock:
            self._services.pop(key, None)
            for lens_key in [k for k in self._lenses if k[0] == key]:
                del self._lenses[lens_key]


def reads(result: AttentionResult, service: Any) -> bool:
    """Whether `service`'s logit lens and roles apply: a decoder result of its generation model, with its ids."""
    if result.architecture != "decoder" or result.decoder_token_ids is None:
        return False
    try:
        return result.model_name == service.model_name("generation")
    except Exception:  # a profile without a generation model
        return False


PROBES = ModelProbes()


# --- position ranges for the lens -----------------------------------------------------------------------
def lens_spans(result: AttentionResult) -> list[tuple[str, str]]:
    """(label, "start:end") ranges to offer, at most MAX_LENS_POSITIONS positions each: the last 16 (the default),
    the generated tokens (with the position that predicted the first), the last 32 and 64, then blocks of 32."""
    total = _length(result)
    spans: list[tuple[str, tuple[int, int]]] = []
    last = (max(0, total - DEFAULT_LENS_POSITIONS), total)
    spans.append((f"last {last[1] - last[0]} positions", last))
    steps = len(result.generation_steps or [])
    if steps:
        start = max(0, total - steps - 1, total - MAX_LENS_POSITIONS)
        spans.append(("the generated tokens" if start == max(0, total - steps - 1) else "the last generated tokens",
                      (start, total)))
    for size in (32, MAX_LENS_POSITIONS):
        if total > DEFAULT_LENS_POSITIONS:
            spans.append((f"last {min(size, total)} positions", (max(0, total - size), total)))
    for start in range(0, total, BLOCK_POSITIONS):
        spans.append(("positions", (start, min(total, start + BLOCK_POSITIONS))))
    seen, choices = set(), []
    for label, (start, end) in spans:
        if (start, end) not in seen:
            seen.add((start, end))
            choices.append((f"{label} ({start}–{end - 1})" if label != "positions" else f"positions {start}–{end - 1}",
                            f"{start}:{end}"))
    return choices


def default_span(result: AttentionResult) -> tuple[int, int]:
    """The generated tokens when they fit in 16 positions, else the last 16: each position unembeds every layer
    through the whole vocabulary (Gemma: 18 × 262,144 logits), ~0.3 s per position on 2 busy CPU cores."""
    spans = lens_spans(result)
    generated = [value for label, value in spans if label.startswith("the generated")]
    if generated and _width(generated[0]) <= DEFAULT_LENS_POSITIONS:
        return _span_of(generated[0])
    return _span_of(spans[0][1])


def _width(value: str) -> int:
    start, end = _span_of(value)
    return end - start


def parse_span(value: Any, result: AttentionResult) -> tuple[int, int]:
    """(start, end) of one of the offered ranges ("start:end", from the page: anything); the default otherwise."""
    offered = {choice for _, choice in lens_spans(result)}
    return _span_of(value) if isinstance(value, str) and value in offered else default_span(result)


def _span_of(value: str) -> tuple[int, int]:
    start, end = (int(part) for part in value.split(":"))
    return start, end


def span_value(span: tuple[int, int]) -> str:
    return f"{span[0]}:{span[1]}"


def _length(result: AttentionResult) -> int:
    return len(result.tokens(result.main_side))
