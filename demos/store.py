"""A bounded, expiring, thread-safe store of AttentionResults, keyed by browser session and task.

The model runs once per request; layer and head switches redraw from the result kept here and never run the model
again. Attention is large (Gemma at 256 tokens: 18 × 4 × 256 × 256 float32 ≈ 19 MB of matrices; at 1,024 tokens,
kept as queries and keys, 94 MB: service/attention/on_demand.py), so the store is
bounded three ways: entries expire `ttl_seconds` after their last use, at most `max_entries` are kept, and their
attention arrays together stay under `max_bytes`. The least recently used entries go first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from service.result import AttentionResult

DEFAULT_MAX_ENTRIES = 64
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # ~13 Gemma results at 256 tokens (19 MB each), ~2 at 1,024 (94 MB)
DEFAULT_TTL_SECONDS = 30 * 60.0


def result_bytes(result: Any) -> int:
    """Bytes held by the numpy arrays of a result (attention dominates everything else); an object that keeps
    several results says itself (`kept_bytes()`, e.g. the Lesson tab's run)."""
    if callable(getattr(result, "kept_bytes", None)):
        return int(result.kept_bytes())
    total = 0
    for name in ("encoder_attention", "decoder_attention", "cross_attention"):
        array = getattr(result, name, None)
        if array is not None:  # attention kept as queries and keys also holds the layers its views computed
            total += int(getattr(array, "held_bytes", getattr(array, "nbytes", 0)))
    return total


class ResultStore:
    """LRU + TTL map from (session id, task) to the last AttentionResult of that session's task."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1 or ttl_seconds <= 0:
            raise ValueError("max_entries, max_bytes and ttl_seconds must all be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (last use time, size in bytes, result); order = least recently used first
        self._entries: OrderedDict[tuple[str, str], tuple[float, int, AttentionResult]] = OrderedDict()
        self._bytes = 0

    def put(self, session_id: str, task: str, result: AttentionResult) -> None:
        """Keep `result` as the session's latest result for `task`, evicting old entries to stay in bounds."""
        key = (str(session_id), str(task))
        size = result_bytes(result)
        with self._lock:
            self._drop(key)
            self._entries[key] = (self._clock(), size, result)
            self._bytes += size
            self._evict()

    def get(self, session_id: str, task: str) -> AttentionResult | None:
        """The session's latest result for `task`, or None when there is none or it expired."""
        key = (str(session_id), str(task))
        with self._lock:
            self._expire()
            entry = self._entries.get(key)
            if entry is None:
                return None
            _, size, result = entry
            self._entries[key] = (self._clock(), size, result)
            self._entries.move_to_end(key)
            return result

    def discard(self, session_id: str, task: str) -> None:
        """Forget the session's result for `task` (a new run replaces it; until it completes there is none)."""
        with self._lock:
            self._drop((str(session_id), str(task)))

    def clear_session(self, session_id: str) -> None:
        """Forget every result of one session (called when its browser tab closes)."""
        with self._lock:
            for key in [key for key in self._entries if key[0] == str(session_id)]:
                self._drop(key)

    def __bool__(self) -> bool:
        # A store is a store even when empty: `store or DEFAULT_STORE` (every tab's build_tab) must keep this one.
        # Without this, __len__ made a fresh store falsy and the app's own store (--kept-results-mb) was ignored.
        return True

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._entries)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._bytes

    # --- internals (hold the lock) -----------------------------------------------------------------
    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]

    def _expire(self) -> None:
        deadline = self._clock() - self.ttl_seconds
        while self._entries:
            key, (last_used, _, _) = next(iter(self._entries.items()))
            if last_used > deadline:
                break
            self._drop(key)

    def _evict(self) -> None:
        self._expire()
        # Keep at least the newest entry even when it alone exceeds max_bytes: the user just asked for it.
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            self._drop(next(iter(self._entries)))


DEFAULT_STORE = ResultStore()
