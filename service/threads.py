"""OpenMP thread teams: a service call gives back the one its calling thread made.

PyTorch's CPU build runs its parallel ops on libgomp. Every thread that runs one becomes the master of its own
team (torch.get_num_threads() - 1 workers), kept until that thread exits. A server's request threads live on
(Gradio's worker pool), so each one that ever ran the model kept a sleeping team. Once libgomp manages more threads
than the machine has CPUs, it cuts how long every team spins between two parallel regions (from ~300,000 to ~100
iterations), so a thread running the model sleeps and is woken between its many small ops. On the 2-core machine,
a 40-token Gemma generation took 2.28 s, and 3.05 s while one idle thread that had run Sentiment lived on; with
that thread's team given back, 2.2 s. In the app, generation after any other task was 2.85 → 3.5 s.

`release_thread_team()` gives the calling thread's team back (OpenMP 5's omp_pause_resource_all, soft: libgomp
frees the caller's own pool only; the next parallel op makes a new one, a thread start). `releases_thread_team`
wraps the service's entry points with it. Off libgomp (another OpenMP, or none) both do nothing.

Not done, measured (20 in-process Ask users × 3 different questions, 2 cores): also releasing a request's team
while it waits in the batcher. Then only the leader's team is managed, nothing is throttled, and its worker spins
~3 ms after each op while the waiting requests' Python needs that core: one run took 86 s of wall time with 84 s
of user CPU, against 23-46 s without the release. With GOMP_SPINCOUNT=3000 beside it, 23.4 s against 23.0 s in
the run before: no gain, so the teams stay as they are. The 23-46 s spread between identical runs came with
kernel CPU from 4.7 s to 22.8 s, the machine's, not the code's.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

OMP_PAUSE_SOFT = 1            # omp_pause_resource_t (omp.h)
_LIBGOMP: Any = None          # the libgomp PyTorch loaded, once found
_LOOKED = False

Function = TypeVar("Function", bound=Callable[..., Any])


def release_thread_team() -> bool:
    """Give back the calling thread's OpenMP team (between parallel regions). True when libgomp did."""
    libgomp = _libgomp()
    return libgomp is not None and libgomp.omp_pause_resource_all(OMP_PAUSE_SOFT) == 0


def releases_thread_team(function: Function) -> Function:
    """`function`, then release_thread_team() in the thread that called it (also when it raises)."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            release_thread_team()
    return wrapper  # type: ignore[return-value]


def _libgomp() -> Any:
    """The libgomp mapped into this process (PyTorch's, vendored under any name: libgomp-<hash>.so.1), or None."""
    global _LIBGOMP, _LOOKED
    if _LOOKED:
        return _LIBGOMP
    _LOOKED = True
    if not sys.platform.startswith("linux"):
        return None
    if "torch" not in sys.modules:            # nothing made a team yet: look again once torch is loaded
        _LOOKED = False
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line and line.rstrip().endswith(".so.1")}
        for path in sorted(paths):
            if os.path.basename(path).startswith("libgomp"):
                library = ctypes.CDLL(path)
                library.omp_pause_resource_all.argtypes = [ctypes.c_int]
                _LIBGOMP = library
                break
    except (OSError, AttributeError):  # no /proc, or a libgomp older than OpenMP 5 (GCC < 9)
        logging.getLogger("attention_atlas").debug("libgomp's omp_pause_resource_all unavailable", exc_info=True)
    return _LIBGOMP
