"""The attention panel every tab shares: what was sent, the view and layer/head selectors, and the chosen view.

A task event keeps its AttentionResult in the ResultStore; `refresh_after(event)` chains a fast, private event
that reads it back and draws the panel. Every later change of view, side, layer, head, statistic or query token
redraws from the kept result: the model never runs again, and only one layer (or one summary) is sent per update.
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from demos import VIEW_EVENT, session_id, user_errors
from demos.store import ResultStore
from service.errors import InvalidInputError
from service.result import AttentionResult

# bertviz draws in the browser; beyond this many attention values in one layer the page freezes (viz's limit).
BERTVIZ_MAX_VALUES = 150_000
THEME = "light"

SEGMENT_COLORS = ["#dbeafe", "#fde68a", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc", "#e5e7eb"]


@dataclass(frozen=True)
class View:
    """One way to look at a result: its label, where it draws, which controls it uses and when it applies."""

    key: str
    label: str
    target: str                       # "plot" (gr.Plot) or "html" (gr.HTML)
    controls: frozenset[str]          # of "side", "layer", "head", "statistic", "query"
    module: str                       # viz module holding `function`
    function: str
    applies: Callable[[AttentionResult], bool] = lambda result: True

    def available(self, result: AttentionResult) -> bool:
        return self.applies(result) and self.draw_function() is not None

    def draw_function(self) -> Callable[..., Any] | None:
        try:
            return getattr(importlib.import_module(self.module), self.function, None)
        except ImportError:
            return None


def _has_cross(result: AttentionResult) -> bool:
    return result.cross_attention is not None


def _short(result: AttentionResult) -> bool:
    """Whether one layer of bertviz fits its limit: heads × (S² + T² + T·S) attention values."""
    values = 0
    for array in (result.encoder_attention, result.decoder_attention, result.cross_attention):
        if array is not None:
            _, heads, queries, keys = array.shape  # (layer, head, query_pos, key_pos)
            values += heads * queries * keys
    limit = getattr(importlib.import_module("viz.bertviz_view"), "MAX_BERTVIZ_VALUES", BERTVIZ_MAX_VALUES)
    return values <= limit


VIEWS: list[View] = [
    View("heads", "Layer: every head", "plot", frozenset({"side", "layer"}), "viz.layer_view", "plot_layer_heads"),
    View("head", "Layer: one head", "plot", frozenset({"side", "layer", "head"}), "viz.layer_view", "plot_head"),
    View("mean", "Layer: mean over heads", "plot", frozenset({"side", "layer"}), "viz.layer_view",
         "plot_layer_heads"),
    View("overview", "Model overview (all layers × heads)", "plot", frozenset({"side"}), "viz.overview",
         "plot_model_overview"),
    View("summary", "Head summary (one number per head)", "plot", frozenset({"side", "statistic"}),
         "viz.head_stats", "plot_head_summary"),
    View("strip", "Token strip (what one token looks at)", "html", frozenset({"side", "layer", "head", "query"}),
         "viz.token_strip", "token_strip_html"),
    View("rollout", "Attention rollout (through this layer)", "plot", frozenset({"side", "layer"}),
         "viz.head_stats", "plot_rollout"),
    View("cross", "Cross-attention (target × source)", "plot", frozenset({"layer", "head"}), "viz.cross_view",
         "plot_cross_attention", _has_cross),
    View("bertviz", "bertviz head view (short inputs)", "html", frozenset({"layer"}), "viz.bertviz_view",
         "bertviz_head_view_html", _short),
]
VIEWS_BY_KEY = {view.key: view for view in VIEWS}
DEFAULT_VIEW = "heads"


def _sides(result: AttentionResult) -> list[str]:
    sides = []
    if result.encoder_attention is not None:
        sides.append("encoder")
    if result.decoder_attention is not None:
        sides.append("decoder")
    return sides


def _statistics() -> list[tuple[str, str]]:
    """(label, key) choices for the head summary, from the viz module's STATISTICS."""
    try:
        statistics = importlib.import_module("viz.head_stats").STATISTICS
    except (ImportError, AttributeError):
        return [("Attention entropy", "entropy")]
    return [(str(getattr(info, "label", key)), str(key)) for key, info in statistics.items()]


def available_views(result: AttentionResult) -> list[View]:
    """The views that make sense for this result (cross-attention only for encoder-decoder models...)."""
    return [view for view in VIEWS if view.available(result)]


def draw(result: AttentionResult, view_key: str, side: str | None, layer: int, head: int, statistic: str | None,
         query: int | None) -> Any:
    """The figure (plotly) or HTML string of one view; raises InvalidInputError for choices that do not apply."""
    view = VIEWS_BY_KEY.get(str(view_key))
    if view is None or not view.available(result):
        names = ", ".join(view.key for view in available_views(result))
        raise InvalidInputError(f"Unknown view {view_key!r} for this result; choose one of: {names}.")
    function = view.draw_function()
    assert function is not None
    side = side if side in _sides(result) else result.main_side
    if view.key == "heads":
        return function(result, layer, side, theme=THEME)
    if view.key == "mean":
        return function(result, layer, side, mean_over_heads=True, theme=THEME)
    if view.key == "head":
        return function(result, layer, head, side, theme=THEME)
    if view.key == "overview":
        return function(result, side, theme=THEME)
    if view.key == "summary":
        statistic = statistic if statistic in {key for _, key in _statistics()} else _statistics()[0][1]
        return function(result, statistic, side, theme=THEME)
    if view.key == "strip":
        return str(function(result, layer, query, head, side, theme=THEME))
    if view.key == "rollout":
        return function(result, layer, side, theme=THEME)
    if view.key == "cross":
        return function(result, layer, head, theme=THEME)
    if view.key == "bertviz":
        return str(function(result, layer))
    raise InvalidInputError(f"Unknown view {view_key!r}.")


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
    legend = " ".join(
        f'<span class="atlas-seg" style="background:{color}">{html.escape(name)}</span>'
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
    if result.timings:
        lines.append("Time: " + ", ".join(f"{html.escape(str(k))} {float(v):.2f} s" for k, v in result.timings.items()))
    for notice in result.notices:
        lines.append(f"⚠️ {html.escape(str(notice))}")
    return "\n\n".join(lines)


RUNNING_MESSAGE = "Running… the attention view appears here when the run completes."
FAILED_MESSAGE = "No attention to show: the run did not complete (the error message says why)."


def _query_choices(result: AttentionResult, side: str) -> list[tuple[str, int]]:
    return [(f"{index}: {token}", index) for index, token in enumerate(result.tokens(side))]


class AttentionPanel:
    """The panel's components (built into the current Blocks context) and its events."""

    def __init__(self, task: str, store: ResultStore, elem_prefix: str) -> None:
        self.task = task
        self.store = store
        prefix = elem_prefix
        self.info = gr.Markdown("Run the model to see its attention here.", elem_id=f"{prefix}-info")
        with gr.Accordion("Prompt sent to the model", open=False, visible=False,
                          elem_id=f"{prefix}-prompt-panel") as self.prompt_panel:
            self.prompt = gr.HTML(elem_id=f"{prefix}-prompt")
        with gr.Group(elem_id=f"{prefix}-attention"):
            with gr.Row():
                self.view = gr.Dropdown([(v.label, v.key) for v in VIEWS[:3]], value=DEFAULT_VIEW, label="View",
                                        interactive=True, elem_id=f"{prefix}-view", scale=2)
                self.side = gr.Radio(["encoder", "decoder"], value="decoder", label="Side", visible=False,
                                     interactive=True, elem_id=f"{prefix}-side", scale=1)
                self.statistic = gr.Dropdown(_statistics(), value=_statistics()[0][1], label="Statistic",
                                             visible=False, interactive=True, elem_id=f"{prefix}-statistic", scale=1)
            with gr.Row():
                self.layer = gr.Slider(0, 1, value=0, step=1, label="Layer", interactive=True,
                                       elem_id=f"{prefix}-layer")
                self.head = gr.Slider(0, 1, value=0, step=1, label="Head", visible=False, interactive=True,
                                      elem_id=f"{prefix}-head")
                self.query = gr.Dropdown([("0", 0)], value=0, label="Query token", visible=False, interactive=True,
                                         elem_id=f"{prefix}-query")
            self.plot = gr.Plot(label="Attention", show_label=False, elem_id=f"{prefix}-plot")
            self.html = gr.HTML(visible=False, elem_id=f"{prefix}-html")
        self.controls = [self.view, self.side, self.layer, self.head, self.statistic, self.query]
        self.drawn = [self.plot, self.html]
        for control in self.controls:
            control.input(self.redraw, inputs=self.controls, outputs=self.controls[1:] + self.drawn + [self.info],
                          trigger_mode="always_last", **VIEW_EVENT)

    # --- events -----------------------------------------------------------------------------------------
    def refresh_after(self, event: Any) -> None:
        """Draw the panel from the freshly kept result once `event` (a task run) succeeds."""
        event.success(self.refresh, inputs=self.controls,
                      outputs=[self.info, self.prompt_panel, self.prompt] + self.controls + self.drawn, **VIEW_EVENT)

    def blank_on(self, button: Any) -> Any:
        """For a streamed task: when `button` starts a run, blank the panel first, so the text being written never
        sits next to the previous run's attention. Returns the event to chain the run on with `.then`."""
        return button.click(self.begin_run, outputs=[self.info, self.plot, self.html], **VIEW_EVENT)

    def explain_failures(self, run: Any) -> None:
        """Say why the panel stays blank when `run` fails."""
        run.failure(self.after_failure, outputs=[self.info], **VIEW_EVENT)

    def begin_run(self, request: gr.Request) -> list[Any]:
        """A new run: its predecessor's result is dropped and the drawing hidden until the new result is kept."""
        self.store.discard(session_id(request), self.task)
        return [RUNNING_MESSAGE, gr.update(visible=False), gr.update(visible=False)]

    def after_failure(self, request: gr.Request) -> Any:
        """The run failed: nothing was kept, so say so (unless a result is there after all: then keep it)."""
        if self.store.get(session_id(request), self.task) is not None:
            return gr.update()
        return FAILED_MESSAGE

    def refresh(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any,
                request: gr.Request) -> list[Any]:
        """After a run: new choices and ranges for every control (keeping the user's picks where valid), then draw."""
        result = self.store.get(session_id(request), self.task)
        if result is None:
            return [gr.update(value="Run the model to see its attention here.")] + [gr.update()] * 10
        views = available_views(result)
        view = view if view in {v.key for v in views} else DEFAULT_VIEW
        sides = _sides(result)
        side = side if side in sides else result.main_side
        layers, heads = result.self_attention(side).shape[:2]  # (layer, head, query_pos, key_pos)
        layer = _clamp(layer, layers)
        head = _clamp(head, heads)
        query = len(result.tokens(side)) - 1  # the last token: the one whose prediction came next
        updates = self._draw_updates(result, view, side, layer, head, statistic, query)
        return [
            info_markdown(result),
            gr.update(visible=bool(result.prompt)),
            prompt_html(result),
            gr.update(choices=[(v.label, v.key) for v in views], value=view),
            gr.update(choices=sides, value=side, visible=len(sides) > 1 and "side" in VIEWS_BY_KEY[view].controls),
            gr.update(maximum=max(layers - 1, 1), value=layer, interactive=layers > 1, **updates["layer"]),
            gr.update(maximum=max(heads - 1, 1), value=head, interactive=heads > 1, **updates["head"]),
            gr.update(**updates["statistic"]),
            gr.update(choices=_query_choices(result, side), value=query, **updates["query"]),
            updates["plot"],
            updates["html"],
        ]

    def redraw(self, view: Any, side: Any, layer: Any, head: Any, statistic: Any, query: Any,
               request: gr.Request) -> list[Any]:
        """A control changed: redraw from the kept result (fast; never runs the model)."""
        result = self.store.get(session_id(request), self.task)
        if result is None:
            message = ("No result is kept for this tab: it expired (results are kept for a while per session) or the "
                       "last run did not complete. Run the model again.")
            return [gr.update()] * 5 + [gr.update(), gr.update(), message]
        with user_errors():
            if view not in {v.key for v in available_views(result)}:
                raise InvalidInputError(f"Unknown view {view!r}.")
            sides = _sides(result)
            side = side if side in sides else result.main_side
            layers, heads = result.self_attention(side).shape[:2]  # (layer, head, query_pos, key_pos)
            if VIEWS_BY_KEY[view].key == "cross":
                layers, heads = result.cross_attention.shape[:2]  # (layer, head, decoder_pos, encoder_pos)
            layer, head = _clamp(layer, layers), _clamp(head, heads)
            tokens = len(result.tokens(side))
            query = _clamp(query, tokens)
            updates = self._draw_updates(result, view, side, layer, head, statistic, query)
        side_update = gr.update(visible=len(sides) > 1 and "side" in VIEWS_BY_KEY[view].controls)
        query_update = gr.update(choices=_query_choices(result, side), value=query, **updates["query"])
        return [side_update, gr.update(**updates["layer"]), gr.update(**updates["head"]),
                gr.update(**updates["statistic"]), query_update, updates["plot"], updates["html"],
                info_markdown(result)]

    # --- helpers ----------------------------------------------------------------------------------------
    def _draw_updates(self, result: AttentionResult, view_key: str, side: str, layer: int, head: int,
                      statistic: Any, query: int) -> dict[str, Any]:
        view = VIEWS_BY_KEY[view_key]
        with user_errors():
            drawn = draw(result, view.key, side, layer, head, statistic, query)
        return {
            "layer": {"visible": "layer" in view.controls},
            "head": {"visible": "head" in view.controls},
            "statistic": {"visible": "statistic" in view.controls},
            "query": {"visible": "query" in view.controls},
            "plot": gr.update(value=drawn, visible=True) if view.target == "plot" else gr.update(visible=False),
            "html": gr.update(value=drawn, visible=True) if view.target == "html" else gr.update(visible=False),
        }


def _clamp(value: Any, size: int) -> int:
    """An index in [0, size) from whatever the control sent (None, float, out of range → nearest valid)."""
    try:
        index = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(0, min(size - 1, index))
