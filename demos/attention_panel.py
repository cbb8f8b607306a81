"""The attention panel every tab shares: what was sent, the view and layer/head selectors, and the chosen view.

A task event keeps its AttentionResult in the ResultStore; `refresh_after(event)` chains a fast, private event
that reads it back and draws the panel. Every later change of view, side, layer, head, statistic or query token
redraws from the kept result: the model never runs again, and only one layer (or one summary) is sent per update.
Handlers return updates keyed by component ({component: gr.update(...)}), so adding an output shifts nothing.

Every view is one entry of `VIEWS`, and nothing else in the app lists views. To add one:
  1. write its function in viz/ (from an AttentionResult to a Plotly figure or an HTML string);
  2. add a `View(...)` entry below: a key, a label for the menu, its target ("plot" or "html"), the controls it
     reads (any of CONTROLS), `draw=lambda result, pick: ...` calling the viz function with the checked
     `Selection`, and, when it does not suit every result, `applies=` (and `layers_and_heads=` when its layer/head
     sliders range over another array than the side's self-attention).
The panel then offers it, shows only its controls, and the unit and browser tests draw it for every result.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import gradio as gr

from demos import VIEW_EVENT, session_id, user_errors
from demos.export import add_export
from demos.probes import PROBES, lens_spans, parse_span, span_value
from demos.zoom import default_zoom, has_zoom, parse_zoom, zoom_choices, zoom_value
from demos.store import ResultStore
from service.errors import InvalidInputError
from service.result import AttentionResult, TokenSide
from viz.bertviz_view import MAX_BERTVIZ_VALUES, bertviz_head_view_html
from viz.cross_view import plot_cross_attention
from viz.focus import (has_answer_focus, has_segment_shares, has_source_alignment, plot_answer_focus,
                       plot_segment_shares, plot_source_alignment)
from viz.head_stats import STATISTICS, plot_head_summary, plot_rollout
from viz.layer_view import plot_head, plot_layer_heads
from viz.lens import plot_logit_lens
from viz.overview import plot_model_overview
from viz.roles import plot_head_roles
from viz.token_strip import token_strip_html
from viz.zoom import plot_zoom

THEME = "light"
CONTROLS = frozenset({"side", "layer", "head", "statistic", "query", "span", "zoom"})
STATISTIC_CHOICES = [(info.label, key) for key, info in STATISTICS.items()]  # (label, key) for the dropdown
DEFAULT_STATISTIC = STATISTIC_CHOICES[0][1]

SEGMENT_COLORS = ["#dbeafe", "#fde68a", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc", "#e5e7eb"]


@dataclass(frozen=True)
class Selection:
    """What the controls picked for one drawing, already checked against the result (see `selection_for`)."""

    side: TokenSide      # whose self-attention: "encoder" or "decoder"
    layer: int           # 0-based, within the view's layers
    head: int            # 0-based, within the view's heads
    statistic: str       # a key of viz.head_stats.STATISTICS
    query: int           # 0-based token index on `side`: the token whose attention the token strip shows
    span: tuple[int, int] = (0, 0)  # positions start..end-1 the logit lens reads (demos/probes.py lens_spans)
    zoom: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))  # (query range, key range), demos/zoom.py


def _always(result: AttentionResult) -> bool:
    return True


def _self_attention_size(result: AttentionResult, side: TokenSide) -> tuple[int, int]:
    layers, heads = result.self_attention(side).shape[:2]  # (layer, head, query_pos, key_pos)
    return int(layers), int(heads)


@dataclass(frozen=True)
class View:
    """One way to look at a result, described once: everything the panel needs to offer, set up and draw it."""

    key: str                                             # stable id (dropdown value, API input)
    label: str                                           # what the View menu shows
    target: Literal["plot", "html"]                      # drawn into the panel's gr.Plot or its gr.HTML
    controls: frozenset[str]                             # the controls it reads, of CONTROLS; the others hide
    draw: Callable[[AttentionResult, Selection], Any]    # a Plotly figure (plot) or an HTML string (html)
    applies: Callable[[AttentionResult], bool] = _always  # whether the menu offers it for this result
    # (layers, heads) the layer and head sliders range over, for a result and side
    layers_and_heads: Callable[[AttentionResult, TokenSide], tuple[int, int]] = _self_attention_size
    # views that run the model first (the logit lens): what to say while it runs, "" when the drawing is ready
    pending: Callable[[AttentionResult, Selection], str] | None = None
    opens: str | None = None  # a view the panel offers a button for, with the same layer and head (head roles)

    def __post_init__(self) -> None:
        if not self.controls <= CONTROLS:
            raise ValueError(f"view {self.key!r} names unknown controls {sorted(self.controls - CONTROLS)}")
        if self.target not in ("plot", "html"):
            raise ValueError(f"view {self.key!r} draws into {self.target!r}; use 'plot' or 'html'")


def _has_cross(result: AttentionResult) -> bool:
    return result.cross_attention is not None


def _cross_size(result: AttentionResult, side: TokenSide) -> tuple[int, int]:
    layers, heads = result.cross_attention.shape[:2]  # (layer, head, decoder_pos, encoder_pos)
    return int(layers), int(heads)


def _fits_bertviz(result: AttentionResult) -> bool:
    """Whether one layer of bertviz fits viz's limit: heads × (S² + T² + T·S) attention values."""
    values = 0
    for array in (result.encoder_attention, result.decoder_attention, result.cross_attention):
        if array is not None:
            _, heads, queries, keys = array.shape  # (layer, head, query_pos, key_pos)
            values += heads * queries * keys
    return values <= MAX_BERTVIZ_VALUES


VIEWS: tuple[View, ...] = (
    # what the produced tokens looked at (viz/focus.py): the answer read against the user's own text
    View("focus", "Answer focus: your text (mean over heads)", "plot", frozenset({"layer"}),
         lambda result, pick: plot_answer_focus(result, pick.layer, theme=THEME), applies=has_answer_focus),
    View("focus_head", "Answer focus: your text (one head)", "plot", frozenset({"layer", "head"}),
         lambda result, pick: plot_answer_focus(result, pick.layer, pick.head, theme=THEME),
         applies=has_answer_focus),
    View("shares", "Attention by segment, every layer (mean over heads)", "plot", frozenset(),
         lambda result, pick: plot_segment_shares(result, theme=THEME), applies=has_segment_shares),
    View("shares_head", "Attention by segment, every layer (one head)", "plot", frozenset({"head"}),
         lambda result, pick: plot_segment_shares(result, pick.head, theme=THEME), applies=has_segment_shares),
    View("heads", "Layer: every head", "plot", frozenset({"side", "layer"}),
         lambda result, pick: plot_layer_heads(result, pick.layer, pick.side, theme=THEME)),
    View("head", "Layer: one head", "plot", frozenset({"side", "layer", "head"}),
         lambda result, pick: plot_head(result, pick.layer, pick.head, pick.side, theme=THEME)),
    View("mean", "Layer: mean over heads", "plot", frozenset({"side", "layer"}),
         lambda result, pick: plot_layer_heads(result, pick.layer, pick.side, mean_over_heads=True, theme=THEME)),
    View("overview", "Model overview (all layers × heads)", "plot", frozenset({"side"}),
         lambda result, pick: plot_model_overview(result, pick.side, theme=THEME)),
    View("summary", "Head summary (one number per head)", "plot", frozenset({"side", "statistic"}),
         lambda result, pick: plot_head_summary(result, pick.statistic, pick.side, theme=THEME,
                                                roles=PROBES.roles(result) if pick.side == "decoder" else None)),
    View("strip", "Token strip (what one token looks at)", "html", frozenset({"side", "layer", "head", "query"}),
         lambda result, pick: str(token_strip_html(result, pick.layer, pick.query, pick.head, pick.side,
                                                   theme=THEME))),
    View("rollout", "Attention rollout (through this layer)", "plot", frozenset({"side", "layer"}),
         lambda result, pick: plot_rollout(result, pick.layer, pick.side, theme=THEME)),
    # long results: one block of queries × keys at full resolution, where the layer heatmaps pool tokens
    View("zoom", "Zoom: a block of queries × keys (mean over heads)", "plot", frozenset({"side", "layer", "zoom"}),
         lambda result, pick: plot_zoom(result, pick.layer, *pick.zoom, side=pick.side, theme=THEME),
         applies=has_zoom),
    View("zoom_head", "Zoom: a block of queries × keys (one head)", "plot",
         frozenset({"side", "layer", "head", "zoom"}),
         lambda result, pick: plot_zoom(result, pick.layer, *pick.zoom, head=pick.head, side=pick.side, theme=THEME),
         applies=has_zoom),
    View("cross", "Cross-attention (target × source)", "plot", frozenset({"layer", "head"}),
         lambda result, pick: plot_cross_attention(result, pick.layer, pick.head, theme=THEME),
         applies=_has_cross, layers_and_heads=_cross_size),
    View("align", "Source alignment (decoder-only analogue of cross-attention)", "plot", frozenset({"layer"}),
         lambda result, pick: plot_source_alignment(result, pick.layer, theme=THEME), applies=has_source_alignment),
    View("bertviz", "bertviz head view (short inputs)", "html", frozenset({"layer"}),
         lambda result, pick: str(bertviz_head_view_html(result, pick.layer)), applies=_fits_bertviz),
    # the two views that run the generation model (demos/probes.py): offered for results a panel adopted
    View("lens", "Logit lens (top token after each layer)", "plot", frozenset({"span"}),
         lambda result, pick: plot_logit_lens(PROBES.lens(result, *pick.span), title=f"{result.model_name} · logit lens",
                                              theme=THEME),
         applies=PROBES.can_probe,
         pending=lambda result, pick: "" if PROBES.has_lens(result, *pick.span) else
         f"⏳ Computing the logit lens for positions {pick.span[0]}–{pick.span[1] - 1}: the model runs once for "
         "this range (a few seconds on a laptop CPU, longer for 64 positions); switching back to it is instant."),
    View("roles", "Head roles (induction probe)", "plot", frozenset({"layer", "head"}),
         lambda result, pick: plot_head_roles(PROBES.roles(result), selected=(pick.layer, pick.head),
                                              model_name=result.model_name, theme=THEME),
         applies=PROBES.can_probe, opens="head"),
)
VIEWS_BY_KEY = {view.key: view for view in VIEWS}
DEFAULT_VIEW = "heads"   # offered for every result: what a result opens on when OPENING_VIEW does not apply
OPENING_VIEW = "focus"   # what a new result opens on where it applies: the produced tokens against the user's text


def _sides(result: AttentionResult) -> list[TokenSide]:
    """The sides with self-attention, encoder first."""
    sides: list[TokenSide] = []
    if result.encoder_attention is not None:
        sides.append("encoder")
    if result.decoder_attention is not None:
        sides.append("decoder")
    return sides


def available_views(result: AttentionResult) -> list[View]:
    """The views that make sense for this result (cross-attention only for encoder-decoder models...)."""
    return [view for view in VIEWS if view.applies(result)]


def offered_view(result: AttentionResult, view_key: Any) -> View:
    """The view `view_key` names, if it applies to `result`; else InvalidInputError listing the ones that do."""
    view = VIEWS_BY_KEY.get(view_key) if isinstance(view_key, str) else None
    if view is None or not view.applies(result):
        names = ", ".join(view.key for view in available_views(result))
        raise InvalidInputError(f"Unknown view {str(view_key)[:40]!r} for this result; choose one of: {names}.")
    return view


def selection_for(result: AttentionResult, view: View, side: Any = None, layer: Any = 0, head: Any = 0,
                  statistic: Any = None, query: Any = None, span: Any = None, zoom: Any = None) -> Selection:
    """The controls' raw values (from a stale page, an API client, ...) made valid for `result` and `view`.

    An unknown side becomes the result's main side, an unknown statistic the first one, and indexes are clamped
    to the nearest valid one; a missing query is the last token (the one whose prediction came next)."""
    side = side if side in _sides(result) else result.main_side
    layers, heads = view.layers_and_heads(result, side)
    tokens = len(result.tokens(side))
    return Selection(
        side=side,
        layer=_clamp(layer, layers),
        head=_clamp(head, heads),
        statistic=statistic if statistic in STATISTICS else DEFAULT_STATISTIC,
        query=tokens - 1 if query is None else _clamp(query, tokens),
        span=parse_span(span, result) if "span" in view.controls else (0, 0),
        zoom=parse_zoom(zoom, result, side) if "zoom" in view.controls else ((0, 0), (0, 0)),
    )


def draw(result: AttentionResult, view_key: str, side: Any = None, layer: Any = 0, head: Any = 0,
         statistic: Any = None, query: Any = None, span: Any = None, zoom: Any = None) -> Any:
    """The figure (plotly) or HTML string of one view; raises InvalidInputError for a view that does not apply."""
    view = offered_view(result, view_key)
    return view.draw(result, selection_for(result, view, side, layer, head, statistic, query, span, zoom))


# --- what was sent: the prompt, coloured by segment ----------------------------------------------------------
def prompt_html(result: AttentionResult) -> str:
    """The tokens actually sent, coloured by segment (demonstrations, question, ...), and the exact prompt text."""
    if not result.prompt:
        return ""
    side = "decoder" if result.decoder_tokens is not None else "encoder"
    tokens = result.tokens(side)
    segments = sorted((s for s in result.segments if s.side == side), key=lambda s: (s.start, s.end))
    names: dict[str, str] = {}
    owner: list[str | None] = [None] * len(tokens)
    for segment in segments:
        names.setdefault(segment.name, SEGMENT_COLORS[len(names) % len(SEGMENT_COLORS)])
        for index in range(max(0, segment.start), min(len(tokens), segment.end)):
            owner[index] = segment.name
    similarity = {  # demonstrations chosen for this input (service/tasks/demonstrations.py): how similar, from where
        choice["segment"]: f' · similarity {float(choice["similarity"]):.2f} ({choice["pool"]} #{choice["index"]})'
        for choice in (result.demonstrations or [])}
    legend = " ".join(
        f'<span class="atlas-seg" style="background:{color}">{html.escape(name + similarity.get(name, ""))}</span>'
        for name, color in names.items())
    pieces = []
    for index, token in enumerate(tokens):
        name = owner[index]
        style = f' style="background:{names[name]}"' if name else ""
        title = html.escape(f"#{index} · {name}" if name else f"#{index}", quote=True)
        text = html.escape(token)
        if token.endswith("↵"):
            text += "<br>"
        pieces.append(f'<span class="atlas-tok" title="{title}"{style}>{text}</span>')
    return (
        '<div class="atlas-prompt">'
        f'<p>{len(tokens)} tokens{": " + legend if legend else ""}</p>'
        f'<div class="atlas-prompt-tokens">{"".join(pieces)}</div>'
        f'<details><summary>Exact prompt text</summary><pre>{html.escape(result.prompt)}</pre></details>'
        "</div>"
    )


def info_markdown(result: AttentionResult) -> str:
    """Model, size of the attention, timings and notices, as Markdown (every model string escaped)."""
    shape = result.self_attention().shape  # (layer, head, query_pos, key_pos)
    lines = [
        f"**Model:** `{html.escape(result.model_name)}` ({html.escape(result.architecture)}) · "
        f"{shape[0]} layers × {shape[1]} heads · {shape[2]} {result.main_side} tokens"
    ]
    if result.num_key_value_heads and result.num_key_value_heads < shape[1]:
        lines.append(f"Grouped-query attention: {shape[1]} query heads share {result.num_key_value_heads} key/value "
                     "head(s).")
    if timing := time_line(result.timings):
        lines.append(timing)
    for notice in result.notices:
        lines.append(f"⚠️ {html.escape(str(notice))}")
    return "\n\n".join(lines)


# The service's timings contract: "model" = seconds running the model (generate or forward), "capture" = seconds
# extracting the attention afterwards (about 0 when it was kept while the model ran).
TIMING_PARTS = (("model", "model"), ("capture", "attention capture"))


def time_line(timings: dict[str, Any]) -> str:
    """"Time: model 1.23 s · attention capture 0.05 s", the same for every task; a part whose time is missing (or
    not a finite number) is left out rather than guessed, and no part at all gives ""."""
    parts = []
    for key, label in TIMING_PARTS:
        try:
            seconds = float(timings[key])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            parts.append(f"{label} {seconds:.2f} s")
    return "Time: " + " · ".join(parts) if parts else ""


RUNNING_MESSAGE = "Running… the attention view appears here when the run completes."
FAILED_MESSAGE = "No attention to show: the run did not complete (the error message says why)."
EMPTY_MESSAGE = "Run the model to see its attention here."
EXPIRED_MESSAGE = ("No result is kept for this tab: it expired (results are kept for a while per session) or the "
                   "last run did not complete. Run the model again.")


class AttentionPanel:
    """The panel's components (built into the current Blocks context) and its events."""

    def __init__(self, task: str, store: ResultStore, elem_prefix: str, service: Any = None) -> None:
        self.task = task
        self.store = store
        self.service = service  # given: the logit lens and head roles are offered for its generation model's results
        prefix = elem_prefix
        self.info = gr.Markdown(EMPTY_MESSAGE, elem_id=f"{prefix}-info")
        with gr.Accordion("Prompt sent to the model", open=False, visible=False,
                          elem_id=f"{prefix}-prompt-panel") as self.prompt_panel:
            self.prompt = gr.HTML(elem_id=f"{prefix}-prompt")
        with gr.Group(elem_id=f"{prefix}-attention"):
            with gr.Row():
                self.view = gr.Dropdown([(v.label, v.key) for v in VIEWS[:3]], value=OPENING_VIEW, label="View",
                                        interactive=True, elem_id=f"{prefix}-view", scale=2)
                self.side = gr.Radio(["encoder", "decoder"], value="decoder", label="Side", visible=False,
                                     interactive=True, elem_id=f"{prefix}-side", scale=1)
                self.statistic = gr.Dropdown(STATISTIC_CHOICES, value=DEFAULT_STATISTIC, label="Statistic",
                                             visible=False, interactive=True, elem_id=f"{prefix}-statistic", scale=1)
            with gr.Row():
                self.layer = gr.Slider(0, 1, value=0, step=1, label="Layer", interactive=True,
                                       elem_id=f"{prefix}-layer")
                self.head = gr.Slider(0, 1, value=0, step=1, label="Head", visible=False, interactive=True,
                                      elem_id=f"{prefix}-head")
                self.query = gr.Dropdown([("0", 0)], value=0, label="Query token", visible=False, interactive=True,
                                         elem_id=f"{prefix}-query")
                self.span = gr.Dropdown([("last positions", "0:1")], value="0:1", label="Positions (≤ 64)",
                                        visible=False, interactive=True, elem_id=f"{prefix}-span")
                self.zoom = gr.Dropdown([("queries × keys", "0:1|0:1")], value="0:1|0:1",
                                        label="Block (queries × keys)", visible=False, interactive=True,
                                        elem_id=f"{prefix}-zoom")
                self.open_view = gr.Button("Open this head's heatmap", visible=False, size="sm",
                                           elem_id=f"{prefix}-open-view")
            self.plot = gr.Plot(label="Attention", show_label=False, elem_id=f"{prefix}-plot")
            self.html = gr.HTML(visible=False, elem_id=f"{prefix}-html")
        # The handlers take the controls in this order; they return {component: update}.
        self.controls = [self.view, self.side, self.layer, self.head, self.statistic, self.query, self.span,
                         self.zoom]
        self.control_of = {"side": self.side, "layer": self.layer, "head": self.head, "statistic": self.statistic,
                           "query": self.query, "span": self.span, "zoom": self.zoom}
        self.drawn = {"plot": self.plot, "html": self.html}
        for control in self.controls:
            control.input(self.redraw_events, inputs=self.controls, outputs=self.redraw_outputs(),
                          trigger_mode="always_last", **VIEW_EVENT)
        self.open_view.click(self.open_linked_view, inputs=self.controls, outputs=[self.view, *self.redraw_outputs()],
                             **VIEW_EVENT)
        self.export = add_export(self, prefix)  # the Export button and its download links, under the panel

    def redraw_outputs(self) -> list[Any]:
        """What a control change may update: the other controls, the drawing and the info line."""
        return [*self.control_of.values(), *self.drawn.values(), self.info, self.open_view]

    def refresh_outputs(self) -> list[Any]:
        """What a new result updates: everything in the panel."""
        return [self.info, self.prompt_panel, self.prompt, self.view, *self.control_of.values(),
                *self.drawn.values(), self.open_view]

    # --- events -----------------------------------------------------------------------------------------
    def refresh_after(self, event: Any) -> None:
        """Draw the panel from the freshly kept result once `event` (a task run) succeeds."""
        event.success(self.refresh_events, inputs=self.controls, outputs=self.refresh_outputs(), **VIEW_EVENT)

    def blank_after(self, started: Any) -> Any:
        """For a streamed task: once `started` (the event its button fires) is done, blank the panel, so the text
        being written never sits next to the previous run's attention. Returns the event to chain the run on."""
        return started.then(self.begin_run, outputs=[self.info, self.plot, self.html], **VIEW_EVENT)

    def explain_failures(self, run: Any) -> None:
        """Say why the panel stays blank when `run` fails."""
        run.failure(self.after_failure, outputs=[self.info], **VIEW_EVENT)

    def begin_run(self, request: gr.Request) -> dict[Any, Any]:
        """A new run: its predecessor's result is dropped and the drawing hidden until the new result is kept."""
        self.store.discard(session_id(request), self.task)
        return {self.info: RUNNING_MESSAGE, self.plot: gr.update(visible=False), self.html: gr.update(visible=False)}

    def after_failure(self, request: gr.Request) -> dict[Any, Any]:
        """The run failed: nothing was kept, so say so (unless a result is there after all: then keep it)."""
        if self.store.get(session_id(request), self.task) is not None:
            return {}
        return {self.info: FAILED_MESSAGE}

    def refresh(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any,
                request: gr.Request, span: Any = None, zoom: Any = None) -> dict[Any, Any]:
        """After a run: new choices and ranges for every control (keeping the user's picks where valid), then draw."""
        result = self.store.get(session_id(request), self.task)
        if result is None:
            return {self.info: EMPTY_MESSAGE}
        if self.service is not None:
            PROBES.adopt(result, self.service)
        views = available_views(result)
        offered = {v.key for v in views}
        chosen = VIEWS_BY_KEY[view if view in offered else OPENING_VIEW if OPENING_VIEW in offered else DEFAULT_VIEW]
        # query, span and zoom None: a new result starts on its last token (the one whose prediction came next),
        # the lens and the zoom on their default ranges
        pick = selection_for(result, chosen, side, layer, head, statistic, query=None, span=None, zoom=None)
        return {
            self.info: info_markdown(result),
            self.prompt_panel: gr.update(visible=bool(result.prompt)),
            self.prompt: prompt_html(result),
            self.view: gr.update(choices=[(v.label, v.key) for v in views], value=chosen.key),
            **self._view_updates(result, chosen, pick, sent=None),
        }

    def redraw(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any,
               request: gr.Request, span: Any = None, zoom: Any = None) -> dict[Any, Any]:
        """A control changed: redraw from the kept result (fast; only a view with `pending` may run the model)."""
        result = self.store.get(session_id(request), self.task)
        if result is None:
            return {self.info: EXPIRED_MESSAGE}
        with user_errors():
            chosen = offered_view(result, view)
            pick = selection_for(result, chosen, side, layer, head, statistic, query, span, zoom)
        sent = {"side": side, "layer": layer, "head": head, "statistic": statistic, "query": query, "span": span,
                "zoom": zoom}
        return {**self._view_updates(result, chosen, pick, sent), self.info: info_markdown(result)}

    # The events: a view that runs the model first (the logit lens) says so at once, then draws.
    def redraw_events(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any,
                      request: gr.Request, span: Any = None, zoom: Any = None) -> Iterator[dict[Any, Any]]:
        if message := self._pending(view, side, layer, head, statistic, query, span, request, after_run=False):
            yield {self.info: message}
        yield self.redraw(view, side, layer, head, statistic, query, request, span, zoom)

    def refresh_events(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any,
                       request: gr.Request, span: Any = None, zoom: Any = None) -> Iterator[dict[Any, Any]]:
        if message := self._pending(view, side, layer, head, statistic, query, span, request, after_run=True):
            yield {self.info: message}
        yield self.refresh(view, side, layer, head, statistic, query, request, span, zoom)

    def open_linked_view(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any,
                         request: gr.Request, span: Any = None, zoom: Any = None) -> dict[Any, Any]:
        """The button of a view with `opens` (head roles): show that view with the same layer and head."""
        result = self.store.get(session_id(request), self.task)
        if result is None:
            return {self.info: EXPIRED_MESSAGE}
        with user_errors():
            target = offered_view(result, VIEWS_BY_KEY[view].opens if view in VIEWS_BY_KEY else None)
            pick = selection_for(result, target, side, layer, head, statistic, query, span, zoom)
        return {self.view: gr.update(value=target.key), **self._view_updates(result, target, pick, sent=None),
                self.info: info_markdown(result)}

    def _pending(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any, span: Any,
                 request: gr.Request, after_run: bool) -> str:
        result = self.store.get(session_id(request), self.task)
        chosen = VIEWS_BY_KEY.get(view) if isinstance(view, str) else None
        if result is None or chosen is None or chosen.pending is None:
            return ""
        if after_run and self.service is not None:
            PROBES.adopt(result, self.service)
        if not chosen.applies(result):
            return ""
        pick = selection_for(result, chosen, side, layer, head, statistic, None if after_run else query,
                             None if after_run else span)
        return chosen.pending(result, pick)

    # --- helpers ----------------------------------------------------------------------------------------
    def _view_updates(self, result: AttentionResult, view: View, pick: Selection,
                      sent: dict[str, Any] | None) -> dict[Any, Any]:
        """The controls `view` reads shown with their ranges, the others hidden, and its drawing in its target (the
        other target hidden). A control's value is set after a new result (`sent` None) and where the page sent
        one that had to be corrected; otherwise it is left alone, so a slider being dragged never jumps back."""
        with user_errors():
            drawn = view.draw(result, pick)
        sides = _sides(result)
        layers, heads = view.layers_and_heads(result, pick.side)
        picked = {"side": pick.side, "layer": pick.layer, "head": pick.head, "statistic": pick.statistic,
                  "query": pick.query,
                  "span": span_value(pick.span if "span" in view.controls else parse_span(None, result)),
                  "zoom": zoom_value(pick.zoom if "zoom" in view.controls else default_zoom(result, pick.side))}
        settings = {
            "side": {"choices": sides},
            "layer": {"maximum": max(layers - 1, 1), "interactive": layers > 1},
            "head": {"maximum": max(heads - 1, 1), "interactive": heads > 1},
            "statistic": {},
            "query": {"choices": _query_choices(result, pick.side)},  # the side may have changed
            "span": {"choices": lens_spans(result)},
            "zoom": {"choices": zoom_choices(result, pick.side)},
        }
        updates: dict[Any, Any] = {}
        for name, component in self.control_of.items():
            visible = name in view.controls and (name != "side" or len(sides) > 1)
            value = {"value": picked[name]} if sent is None or name == "query" or sent[name] != picked[name] else {}
            updates[component] = gr.update(visible=visible, **settings[name], **value)
        updates[self.open_view] = gr.update(visible=view.opens is not None)
        for target, component in self.drawn.items():
            # the class names the view drawn (page styles and the browser tests can tell which one is showing)
            updates[component] = (gr.update(value=drawn, visible=True, elem_classes=[view_class(view)])
                                  if target == view.target else gr.update(visible=False))
        return updates


def view_class(view: View) -> str:
    """The CSS class the panel's plot or HTML block carries while it shows `view`: "atlas-view-<key>"."""
    return f"atlas-view-{view.key}"


def _query_choices(result: AttentionResult, side: TokenSide) -> list[tuple[str, int]]:
    return [(f"{index}: {token}", index) for index, token in enumerate(result.tokens(side))]


def _clamp(value: Any, size: int) -> int:
    """An index in [0, size) from whatever the control sent (None, float, NaN, out of range → nearest valid)."""
    try:
        index = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(0, min(size - 1, index))
