"""Where glibc puts big arrays. The app keeps them out of the heap, so kept results do not fragment it; a batched
forward's short-lived tensors go into it, so each step does not page-fault its megabytes in afresh.

- `keep_big_arrays_out_of_the_heap` (app.py, at start) fixes glibc's mmap threshold at 128 KiB: by default glibc
  raises it after each large free, later attention arrays come from the heap and fragment it (the soak's resident
  memory crept up by 40-85 MiB per 600 requests; with the fixed threshold it stays flat: docs/reliability.md).
- But then every tensor over 128 KiB is a fresh mmap whose pages fault in as they are first written. A batched
  decoding step of 16 Ask answers allocates about 1 GB of such short-lived tensors (Gemma's eager attention repeats
  each key / value head for its 4 query heads: 23 MB per layer at 16 rows × 350 keys), so under a class's load the
  app spent a third of its CPU in page faults (190,000 a second) and answered at half the in-process speed.
  `short_lived_tensors_in_heap` lifts the threshold for the span of one batched forward only (held under the
  model's lock); what outlives the forward is copied out of its outputs after it.
Off glibc (or where the app did not fix the threshold) both do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
from collections.abc import Iterator
from typing import Any

M_MMAP_THRESHOLD = -3                 # glibc's mallopt parameter number (malloc.h)
KEPT_ARRAYS_THRESHOLD = 128 * 1024    # larger arrays are mmapped, and unmapped when freed
SHORT_LIVED_THRESHOLD = 64 * 2**20    # during a batched forward: its tensors come from the heap and are reused

_LIBC: Any = None                     # set once the threshold is fixed


def keep_big_arrays_out_of_the_heap() -> None:
    """Fix glibc's mmap threshold at KEPT_ARRAYS_THRESHOLD (Linux / glibc only)."""
    global _LIBC
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        if libc.mallopt(M_MMAP_THRESHOLD, KEPT_ARRAYS_THRESHOLD):
            _LIBC = libc
    except (OSError, AttributeError):  # musl or another libc: keep its defaults
        logging.getLogger("attention_atlas").debug("mallopt unavailable", exc_info=True)


@contextlib.contextmanager
def short_lived_tensors_in_heap() -> Iterator[None]:
    """Within the block, arrays up to SHORT_LIVED_THRESHOLD come from the heap (where the threshold was fixed)."""
    libc = _LIBC
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, SHORT_LIVED_THRESHOLD)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, KEPT_ARRAYS_THRESHOLD)


def give_back_free_heap() -> None:
    """Return the heap's free pages to the OS (glibc's malloc_trim), where the threshold was fixed: after a run of
    batched forwards, so what their short-lived tensors took does not stay resident."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
