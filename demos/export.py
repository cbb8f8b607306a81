"""Export what the attention panel shows: the view as one offline HTML file and the shown result as JSON.

Nothing touches the disk (demos/privacy.py promises it): the Export button's handler builds both files from the kept
result and the panel's controls, keeps their bytes in memory (`ExportCache`) under unguessable one-time tokens for
EXPORT_TTL_SECONDS, and shows two download links. The route at EXPORT_ROUTE serves a token once, to the same login
that made it (when the app asks for one), and only while the visitor's result is still kept: "Forget my results",
a closed tab or a new run make the links die with it. Unknown, used or expired tokens get a plain 404 sentence.

app.py adds the route with `install_export_route(options)` on its launch options (it has to exist before the
server starts); the panel adds its button and links with `add_export(panel, prefix)`.
"""

from __future__ import annotations

import html
import inspect
import re
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from demos import VIEW_EVENT, session_id, user_errors
from demos.i18n import language_of, translate_value
from demos.store import ResultStore

EXPORT_TTL_SECONDS = 5 * 60.0
EXPORT_MAX_ENTRIES = 64
EXPORT_MAX_BYTES = 256 * 1024 * 1024   # an HTML file is ~5 MB (plotly.js inlined); a JSON up to ~30 MB at 1,024 tokens
EXPORT_ROUTE = "/atlas-export/{token}"
TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")   # secrets.token_urlsafe(32)
EXPORT_LABEL = "Export this view"
HTML_LINK_LABEL = "Download this view (HTML, works offline)"
JSON_LINK_LABEL = "Download the shown result (JSON)"
LINKS_NOTE = (f"Each link works once, for {int(EXPORT_TTL_SECONDS // 60)} minutes; the files come from this "
              "server's memory, never its disk. PNG (1600×900): the figure's camera button; the HTML file has PNG and "
              "SVG buttons.")
NOT_FOUND_TEXT = ("This export link is unknown, already used or expired (links work once, for "
                  f"{int(EXPORT_TTL_SECONDS // 60)} minutes, while your result is kept). Press “{EXPORT_LABEL}” "
                  "under the attention view again.")
LOGIN_TEXT = "Log in to this Attention Atlas first (open its page), then press the export link again."
NO_RESULT_TEXT = "Nothing to export yet: run the model first."
PENDING_TEXT = "This view is still being computed: wait until it shows, then export it."
SLIDE_PNG_JS = """
if (!window.atlasSlideImages) {
  window.atlasSlideImages = true;
  // Plotly's camera reads its options when clicked: set them first (capture phase), sized for slides.
  document.addEventListener('click', function (event) {
    var button = event.target && event.target.closest ? event.target.closest('.modebar-btn') : null;
    var plot = button ? button.closest('.js-plotly-plot') : null;
    if (plot && plot._context) {
      plot._context.toImageButtonOptions = {format: 'png', filename: 'attention-atlas', width: 1600, height: 900,
                                            scale: 1};
    }
  }, true);
}
"""


@dataclass
class Export:
    """One prepared file, kept in memory until it is downloaded once or expires."""

    filename: str
    media_type: str
    body: bytes
    user: str | None                         # the login that made it (None when the app asks for none)
    still_valid: Callable[[], bool] = field(default=lambda: True)  # False once the visitor's result is gone


class ExportCache:
    """Token → Export, bounded (entries, bytes) and expiring; `take` hands an export out once."""

    def __init__(self, ttl_seconds: float = EXPORT_TTL_SECONDS, max_entries: int = EXPORT_MAX_ENTRIES,
                 max_bytes: int = EXPORT_MAX_BYTES, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds, self.max_entries, self.max_bytes = ttl_seconds, max_entries, max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, Export]] = OrderedDict()   # oldest first

    def put(self, export: Export) -> str:
        """Keep `export`; returns its token (unguessable: 256 random bits)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._lock:
            self._entries[token] = (self._clock(), export)
            self._trim()
        return token

    def take(self, token: str, user: str | None) -> Export | None:
        """The export under `token`, removed, if it exists, has not expired, belongs to `user` and its result is
        still kept; else None (the caller answers 404 without saying which)."""
        if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
            return None
        with self._lock:
            self._expire()
            entry = self._entries.get(token)
            if entry is None or entry[1].user != user:
                return None
            del self._entries[token]
        export = entry[1]
        return export if export.still_valid() else None

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._entries)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(len(export.body) for _, export in self._entries.values())

    def _expire(self) -> None:
        deadline = self._clock() - self.ttl_seconds
        while self._entries and next(iter(self._entries.values()))[0] <= deadline:
            self._entries.popitem(last=False)

    def _trim(self) -> None:
        self._expire()
        total = sum(len(export.body) for _, export in self._entries.values())
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or total > self.max_bytes):
            _, (_, dropped) = self._entries.popitem(last=False)
            total -= len(dropped.body)


EXPORTS = ExportCache()


# --- the route -----------------------------------------------------------------------------------------------
def export_routes(cache: ExportCache = EXPORTS) -> list[Any]:
    """The FastAPI route that serves exports: GET EXPORT_ROUTE."""
    async def serve_export(request: Request, token: str) -> Response:
        allowed, user = await logged_in_user(request)
        if not allowed:
            return PlainTextResponse(LOGIN_TEXT, status_code=401, headers={"Cache-Control": "no-store"})
        export = cache.take(token, user)
        if export is None:
            return PlainTextResponse(NOT_FOUND_TEXT, status_code=404, headers={"Cache-Control": "no-store"})
        return Response(export.body, media_type=export.media_type, headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",   # opened in place instead of saved: no script runs in our origin
        })

    return [APIRoute(EXPORT_ROUTE, serve_export, methods=["GET"], include_in_schema=False)]


def install_export_route(launch_options: dict[str, Any], cache: ExportCache = EXPORTS) -> dict[str, Any]:
    """Add the export route to `demo.launch(**launch_options)` (as a route of the app Gradio builds, so it exists
    before the server starts and sits behind the same login). Installing again replaces the route (and its cache):
    one export route per app. Returns `launch_options`."""
    app_kwargs = dict(launch_options.get("app_kwargs") or {})
    others = [route for route in app_kwargs.get("routes") or [] if getattr(route, "path", None) != EXPORT_ROUTE]
    app_kwargs["routes"] = [*others, *export_routes(cache)]
    launch_options["app_kwargs"] = app_kwargs
    return launch_options


async def logged_in_user(request: Request) -> tuple[bool, str | None]:
    """(allowed, user) for a plain HTTP request to Gradio's app, checked the way Gradio checks its own routes
    (gradio/routes.py `get_current_user` and `login_check`): the app's auth dependency if it has one, else the login
    cookie Gradio set. Allowed with user None when the app asks for no login; refused when it does and has none."""
    app = request.app
    dependency = getattr(app, "auth_dependency", None)
    if getattr(app, "auth", None) is None and dependency is None:
        return True, None
    if dependency is not None:
        user = dependency(request)
        if inspect.isawaitable(user):
            user = await user
    else:
        cookie_id = getattr(app, "cookie_id", None)
        tokens = getattr(app, "tokens", None) or {}
        cookie = (request.cookies.get(f"access-token-{cookie_id}")
                  or request.cookies.get(f"access-token-unsecure-{cookie_id}"))
        user = tokens.get(cookie) if cookie_id is not None and cookie else None
    return user is not None, (str(user) if user is not None else None)


# --- the panel's button and links ------------------------------------------------------------------------------
def prepare_export(panel: Any, cache: ExportCache, view: Any, side: Any, layer: Any, head: Any, statistic: Any,
                   query: Any, span: Any, zoom: Any, request: gr.Request | None) -> str:
    """Build the HTML and JSON files of what `panel` shows for this visitor, keep them, return the links' HTML."""
    from demos.attention_panel import offered_view, selection_for
    from viz.export import dumps, result_json, safe_filename, view_html

    session = session_id(request)
    store: ResultStore = panel.store
    result = store.get(session, panel.task)
    if result is None:
        return _message(NO_RESULT_TEXT)
    with user_errors():
        chosen = offered_view(result, view)
        pick = selection_for(result, chosen, side, layer, head, statistic, query, span, zoom)
        if chosen.pending is not None and chosen.pending(result, pick):
            return _message(PENDING_TEXT)
        drawn = translate_value(chosen.draw(result, pick), language_of(request))   # as the page shows it
        name = safe_filename("attention-atlas", result.task, result.model_name.split("/")[-1], chosen.key,
                             f"layer{pick.layer}", f"head{pick.head}")
        title = f"Attention Atlas · {result.model_name} · {chosen.label} · layer {pick.layer}, head {pick.head}"
        page = view_html(drawn, name, title).encode("utf-8")
        data = dumps(result_json(result, chosen.key, pick)).encode("utf-8")
    user = getattr(request, "username", None) if request is not None else None
    kept = weakref.ref(result)

    def still_kept() -> bool:   # the visitor's result is still the one exported (not forgotten, expired, replaced)
        current = store.get(session, panel.task)
        return current is not None and current is kept()

    html_token = cache.put(Export(f"{name}.html", "text/html; charset=utf-8", page, user, still_kept))
    json_token = cache.put(Export(f"{name}.json", "application/json", data, user, still_kept))
    return links_html(html_token, json_token, name)


def links_html(html_token: str, json_token: str, name: str) -> str:
    """The two download links (relative URLs, so a proxy's path prefix is kept), every value escaped."""
    base = EXPORT_ROUTE.split("{")[0].lstrip("/")
    links = []
    for token, extension, label, kind in ((html_token, "html", HTML_LINK_LABEL, "html"),
                                          (json_token, "json", JSON_LINK_LABEL, "json")):
        href = html.escape(f"{base}{token}", quote=True)
        download = html.escape(f"{name}.{extension}", quote=True)
        links.append(f'<a class="atlas-export-{kind}" href="{href}" download="{download}">{html.escape(label)}</a>')
    return (f'<div class="atlas-export-links">{" · ".join(links)}'
            f'<p style="font-size:.85em;opacity:.8;margin:.3em 0 0">{html.escape(LINKS_NOTE)}</p></div>')


def _message(text: str) -> str:
    return f'<p class="atlas-export-message">{html.escape(text)}</p>'


@dataclass
class ExportControls:
    button: Any
    links: Any


def add_export(panel: Any, prefix: str, cache: ExportCache = EXPORTS) -> ExportControls:
    """The export row under `panel` (built into the current Blocks context) and its event: the button builds the
    files of what the panel shows now and shows their links."""
    with gr.Row(elem_id=f"{prefix}-export-row"):
        button = gr.Button(EXPORT_LABEL, size="sm", variant="secondary", scale=0, min_width=160,
                           elem_id=f"{prefix}-export")
        links = gr.HTML("", elem_id=f"{prefix}-export-links", js_on_load=SLIDE_PNG_JS)

    def export(view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any, span: Any, zoom: Any,
               request: gr.Request) -> str:
        return prepare_export(panel, cache, view, side, layer, head, statistic, query, span, zoom, request)

    button.click(export, inputs=panel.controls, outputs=[links], **VIEW_EVENT)
    return ExportControls(button, links)
