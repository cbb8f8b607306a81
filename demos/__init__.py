"""The app's tabs (one module per task) and the helpers they share: errors, lazy loading, session keys."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr

from service.errors import AtlasError, ModelLoadError

logger = logging.getLogger("attention_atlas")

# Every event that runs a model shares one concurrency group: the CPU has no room for two at once.
MODEL_CONCURRENCY_ID = "model"
MODEL_CONCURRENCY_LIMIT = 1
# Except Sentiment and Ask: requests waiting together share their model calls (service/backends/batching.py: one
# label-scoring forward, one decoding loop), so they must be able to wait together. The model's lock still runs one model call at a time; Gradio's worker slots (app.MAX_THREADS)
# bound how many are in flight (24: 16 here, the rest for the other groups). 16 = the batcher's largest batch
# (service/backends/batching.py: DEFAULT_MAX_BATCH): only requests in this group can meet in a batch, and on 2 CPU
# cores the forward of 16 costs ~47 ms a request against ~64 ms for 6 (the vocabulary-wide output layer reads its
# 670 MB of weights once per forward, whatever the batch).
BATCHED_CONCURRENCY_ID = "model-batched"
BATCHED_CONCURRENCY_LIMIT = 16
MODEL_CONCURRENCY_IDS = (MODEL_CONCURRENCY_ID, BATCHED_CONCURRENCY_ID)   # every group whose events run a model
# Redraws only read a kept result and build a figure: they must not wait behind a model run.
VIEW_CONCURRENCY_ID = "view"
VIEW_CONCURRENCY_LIMIT = 4


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn service errors into gr.Error (shown in the tab, sent to API clients) and hide unexpected tracebacks."""
    try:
        yield
    except gr.Error:
        raise
    except ModelLoadError as error:  # stays on screen until closed: the tab cannot work until this is fixed
        raise gr.Error(str(error), duration=None, title="Model unavailable", print_exception=False) from None
    except AtlasError as error:  # the user's input: the message says what to change, no traceback needed
        raise gr.Error(str(error), print_exception=False) from None
    except Exception as error:  # a bug, not the user's mistake: log it, say so plainly
        logger.exception("unexpected error in a handler")
        raise gr.Error(
            f"Something went wrong inside the app ({type(error).__name__}). Try again; if it keeps happening, "
            "restart the app and report the steps that led here."
        ) from error


def load_model(service: Any, task: str, progress: Any) -> None:
    """Load the task's model on first use, feeding the tab's progress bar (fraction, message)."""

    def report(fraction: float, message: str) -> None:
        try:
            progress(max(0.0, min(1.0, float(fraction))), desc=str(message))
        except Exception:  # progress is cosmetic; never fail a load because of it
            logger.debug("progress update failed", exc_info=True)

    service.load(task, progress=report)


def session_id(request: gr.Request | None) -> str:
    """A key for the browser session (or API client session) that made the request."""
    session = getattr(request, "session_hash", None) if request is not None else None
    return str(session) if session else "anonymous"


# Keyword arguments for event listeners.
MODEL_EVENT: dict[str, Any] = {"concurrency_id": MODEL_CONCURRENCY_ID, "concurrency_limit": MODEL_CONCURRENCY_LIMIT}
BATCHED_MODEL_EVENT: dict[str, Any] = {"concurrency_id": BATCHED_CONCURRENCY_ID,
                                       "concurrency_limit": BATCHED_CONCURRENCY_LIMIT}
VIEW_EVENT: dict[str, Any] = {
    "concurrency_id": VIEW_CONCURRENCY_ID,
    "concurrency_limit": VIEW_CONCURRENCY_LIMIT,
    "api_visibility": "private",
    "show_progress": "minimal",
}


def alone(build_tab: Any, title: str, service: Any) -> gr.Blocks:
    """One tab as an app by itself (what `python -m demos.<tab>` serves): for working on a single tab."""
    with gr.Blocks(title=f"Attention Atlas: {title}") as demo:
        build_tab(service)
    return demo


def run_alone(build_tab: Any, title: str) -> None:
    """Serve one tab by itself on the embedded profile, on Gradio's default local address."""
    from service import ModelService

    alone(build_tab, title, ModelService(profile="embedded")).queue(max_size=16).launch()
