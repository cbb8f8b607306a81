"""What the server keeps about a visitor, said on the page, and the "Forget my results" control that drops it.

Two things hold a visitor's results: the ResultStore (each tab's last AttentionResult, for redrawing the panel) and
Gradio's copy of the session's component values (what the page last sent and showed). Both live in memory only;
`forget_session` drops both at once, and the page then reloads, so the screen is blank too.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from demos import VIEW_EVENT, session_id
from demos.store import DEFAULT_TTL_SECONDS, ResultStore

logger = logging.getLogger("attention_atlas")

KEPT_MINUTES = int(DEFAULT_TTL_SECONDS // 60)
# One constant per sentence shown, so the interface-language work can translate them in one place.
KEPT_NOTE = (f"**What this server keeps about you:** the results of your last runs (each tab's answer and its "
             f"attention, so the view can redraw), in memory only, for at most {KEPT_MINUTES} minutes, and what this "
             "page shows while it is open. Nothing you type or get back is written to disk or to the server's logs. "
             "Closing the tab drops it; so does **Forget my results**.")
FORGET_LABEL = "Forget my results"
FORGOTTEN_MESSAGE = "Forgotten: the server holds no result of yours now."
FORGOTTEN_QUERY = "forgotten"
# After forgetting, the page reloads (a new, empty session, in the same interface language) and says what happened.
RELOAD_JS = (f"() => {{ const language = new URLSearchParams(window.location.search).get('lang'); "
             f"window.location.replace(window.location.pathname + '?{FORGOTTEN_QUERY}=1' + "
             f"(language ? '&lang=' + encodeURIComponent(language) : '')); }}")


def forget_session(store: ResultStore, demo: gr.Blocks, session: str) -> None:
    """Drop every kept result of `session`: its ResultStore entries and Gradio's copy of its page's values."""
    store.clear_session(session)
    holder = getattr(demo, "state_holder", None)
    if holder is None:
        return
    with holder.lock:
        holder.session_data.pop(session, None)
        holder.time_last_used.pop(session, None)


def build_forget_control(store: ResultStore, demo: gr.Blocks) -> None:
    """The note on what is kept and the Forget button, built into the current Blocks context (public as /forget)."""
    with gr.Row(elem_id="kept-note-row"):
        gr.Markdown(KEPT_NOTE, elem_id="kept-note")
        forget = gr.Button(FORGET_LABEL, variant="secondary", size="sm", scale=0, min_width=180, elem_id="forget")
    status = gr.Markdown("", elem_id="forget-status")

    def forget_mine(request: gr.Request) -> str:
        forget_session(store, demo, session_id(request))
        return FORGOTTEN_MESSAGE

    def after_reload(request: gr.Request) -> str:
        params = getattr(request, "query_params", None) or {}
        return FORGOTTEN_MESSAGE if FORGOTTEN_QUERY in params else ""

    event = forget.click(forget_mine, outputs=[status], api_name="forget",
                         api_description="Forget this session's kept results at once. Returns a confirmation.",
                         **{**VIEW_EVENT, "api_visibility": "public"})
    event.success(None, js=RELOAD_JS)
    demo.load(after_reload, outputs=[status], **VIEW_EVENT)
