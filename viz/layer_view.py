"""Layer view: the heads of one layer as query × key heatmaps (or their mean), and a single-head view."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from ._common import block_axis, category_axis, check_heads_array, check_index, side_of, tick_font_size
from .arrays import block_bounds, fit_to_budget, masked_float32, pool_attention, visibility_mask, window_of
from .labels import escape_text, plot_labels
from .style import ATTENTION_CAVEAT, COLOR_SCALE, MASKED_NOTE, Theme, base_layout, colorbar

if TYPE_CHECKING:
    from service.result import AttentionResult, Segment


def plot_attention_heads(
    attention: np.ndarray,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str] | None = None,
    *,
    causal: bool = False,
    window: int | None = None,
    head_labels: Sequence[str] | None = None,
    query_special: Sequence[bool] | None = None,
    key_special: Sequence[bool] | None = None,
    title: str = "Attention",
    theme: Theme = "light",
    color_max: float | None = None,
    segments: Sequence[tuple[str, int, int]] = (),
    columns: int | None = None,
    axis_titles: tuple[str, str] = ("key token (looked at)", "query token (looking)"),
    colorbar_title: str = "attention weight",
    note: str | None = None,
    first_positions: tuple[int, int] = (0, 0),
) -> go.Figure:
    """Heatmaps of several heads side by side (array level, for notebooks).

    Args:
        attention: (head, query_pos, key_pos) or (query_pos, key_pos) weights, rows summing to 1.
        query_tokens: Q raw token strings (rows). key_tokens: K strings (columns); default = query_tokens.
        causal: mark key_pos > query_pos as masked (grey), not as zero. window: also mask keys
            at or before query_pos - window (sliding-window layers).
        head_labels: one panel title per head (escaped here); default "head 0", "head 1", ...
        query_special / key_special: True where a token is special (shown ⟨bos⟩ style).
        title: figure title (plain text; escaped here). color_max: top of the colour scale
            (default: the largest visible value, shared by all panels).
        segments: (name, start, end) token spans drawn as separators on single-panel figures.
        columns: panels per row (default up to 4).
        axis_titles: (x title, y title) shown on single-panel figures.
        colorbar_title: label of the colour bar. note: one more caption line (HTML-safe text, not escaped here).
        first_positions: (query, key) position in the whole sequence of the first row and column (a zoomed block:
            hovers name real positions). NaN weights are drawn as masked.
    Returns a Figure; long inputs are pooled into blocks so the JSON stays under the budget.
    """
    key_tokens = query_tokens if key_tokens is None else key_tokens
    attention = check_heads_array(attention, query_tokens, key_tokens)  # (head, query_pos, key_pos)
    num_heads, num_queries, num_keys = attention.shape
    if key_special is None and key_tokens is query_tokens:
        key_special = query_special
    head_labels = list(head_labels) if head_labels is not None else [f"head {h}" for h in range(num_heads)]
    if len(head_labels) != num_heads:
        raise ValueError(f"{len(head_labels)} head labels for {num_heads} heads")
    visible = visibility_mask(num_queries, num_keys, causal, window)
    query_labels = plot_labels(query_tokens, query_special)
    key_labels = plot_labels(key_tokens, key_special)
    columns = columns or min(num_heads, 4)
    rows = math.ceil(num_heads / columns)

    def build(resolution: int) -> go.Figure:
        pooled = pool_attention(attention, visible, resolution, resolution)
        z = masked_float32(pooled.values, pooled.visible)  # (head, query_block, key_block), NaN = masked
        color_top = color_max if color_max is not None else _visible_max(pooled.values, pooled.visible, causal)
        max_ticks = 48 if num_heads == 1 else max(10, 40 // columns)
        y_keys, y_vals, y_text = block_axis(query_labels, pooled.row_bounds, max_ticks, first_positions[0])
        x_keys, x_vals, x_text = block_axis(key_labels, pooled.col_bounds, max_ticks, first_positions[1])
        # panels laid out by hand: make_subplots + per-panel update_*axes took ~1 s for 12 heads
        column_gap, row_gap = (0.03 if columns > 1 else 0.0), (0.07 if rows > 1 else 0.0)
        width, height_share = (1 - (columns - 1) * column_gap) / columns, (1 - (rows - 1) * row_gap) / rows
        traces, layout, titles = [], {}, []
        for head in range(num_heads):
            row, col = head // columns, head % columns
            suffix = "" if head == 0 else str(head + 1)
            left, panel_top = col * (width + column_gap), 1 - row * (height_share + row_gap)  # paper coordinates
            traces.append(go.Heatmap(
                z=z[head], x=x_keys, y=y_keys, coloraxis="coloraxis", hoverongaps=False, xaxis=f"x{suffix}",
                yaxis=f"y{suffix}", hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra>"
                + escape_text(head_labels[head]) + "</extra>"))
            layout[f"xaxis{suffix}"] = {
                **category_axis(x_keys, x_vals, x_text, tick_font_size(len(x_vals)),
                                show=row == rows - 1 or head + columns >= num_heads),
                "domain": [max(0.0, left), min(1.0, left + width)], "anchor": f"y{suffix}", "tickangle": -60}
            layout[f"yaxis{suffix}"] = {
                **category_axis(y_keys, y_vals, y_text, tick_font_size(len(y_vals)), reverse=True, show=col == 0),
                "domain": [max(0.0, panel_top - height_share), min(1.0, panel_top)], "anchor": f"x{suffix}"}
            if num_heads > 1:  # one panel: the figure title names it
                titles.append({"text": escape_text(head_labels[head]), "x": left + width / 2, "y": panel_top,
                               "xref": "paper", "yref": "paper", "xanchor": "center", "yanchor": "bottom",
                               "showarrow": False, "font": {"size": 13}})
        fig = go.Figure(data=traces, layout={**layout, "annotations": titles})
        label = colorbar_title if not pooled.pooled else f"{colorbar_title} (summed per key block)"
        fig.update_layout(coloraxis={"colorscale": COLOR_SCALE, "cmin": 0.0, "cmax": color_top,
                                     "colorbar": colorbar(label, theme)})
        notes = [note] if note else []
        if causal or window is not None:
            notes.append(MASKED_NOTE)
        if pooled.pooled:
            notes.append(f"{num_queries} tokens shown as {len(pooled.row_bounds) - 1} blocks (hover shows the span); "
                         "pick one head for full detail")
        notes.append(ATTENTION_CAVEAT)
        height = 680 if num_heads == 1 else 150 + rows * 300
        base_layout(fig, escape_text(title), theme, height, caption="<br>".join(notes))
        if num_heads == 1:
            fig.update_xaxes(title={"text": escape_text(axis_titles[0])})
            fig.update_yaxes(title={"text": escape_text(axis_titles[1])})
        if num_heads == 1 and segments:
            _draw_segments(fig, segments, pooled.row_bounds, pooled.col_bounds, theme)
        return fig

    def estimated_bytes(resolution: int) -> int:
        """JSON size of build(resolution) without building it: base64 float32 cells plus the axis labels."""
        rows, cols = len(block_bounds(num_queries, resolution)) - 1, len(block_bounds(num_keys, resolution)) - 1
        labels = sum(len(json.dumps(key)) + 1 for key in block_axis(query_labels, block_bounds(num_queries, resolution), 48)[0])
        labels += sum(len(json.dumps(key)) + 1 for key in block_axis(key_labels, block_bounds(num_keys, resolution), 48)[0])
        return 9_000 + num_heads * (rows * cols * 16 // 3 + 2 * labels + 1_500)

    largest = min(max(num_queries, num_keys), 256)
    start = next((r for r in range(largest, 7, -1) if estimated_bytes(r) <= 225_000), 8)
    return fit_to_budget(build, start)  # type: ignore[return-value]


def plot_layer_heads(result: "AttentionResult", layer: int, side: str | None = None, *,
                     mean_over_heads: bool = False, theme: Theme = "light") -> go.Figure:
    """All heads of one self-attention layer of `result` (or their mean when mean_over_heads).

    Args:
        result: an AttentionResult. layer: 0-based layer index.
        side: "encoder" or "decoder" (default: result.main_side). Decoder self-attention is drawn causal.
        mean_over_heads: one heatmap of the mean over heads instead of one per head.
    """
    side = side_of(result, side)
    attention = result.self_attention(side)  # (layer, head, query_pos, key_pos)
    layer = check_index("layer", layer, attention.shape[0], "layers")
    tokens = result.tokens(side)
    heads = attention[layer]  # (head, query_pos, key_pos)
    name = f"{result.model_name} · {side} self-attention · layer {layer}"
    if mean_over_heads:
        heads = heads.mean(axis=0, keepdims=True)  # (1, query_pos, key_pos)
        labels = [f"mean of {attention.shape[1]} heads"]
        name += " · mean over heads"
    else:
        labels = _head_labels(attention.shape[1], result.num_key_value_heads)
    return plot_attention_heads(
        heads, tokens, causal=result.is_causal(side), window=window_of(_layer_types(result, side), layer),
        head_labels=labels, query_special=result.special(side), title=name, theme=theme,
        segments=_segments(result, side))


def plot_head(result: "AttentionResult", layer: int, head: int, side: str | None = None, *,
              theme: Theme = "light") -> go.Figure:
    """One head of one self-attention layer at full resolution (pooled only beyond ~200 tokens).

    Args: result; layer and head (0-based); side "encoder" | "decoder" (default result.main_side).
    """
    side = side_of(result, side)
    attention = result.self_attention(side)  # (layer, head, query_pos, key_pos)
    layer = check_index("layer", layer, attention.shape[0], "layers")
    head = check_index("head", head, attention.shape[1], "heads")
    return plot_attention_heads(
        attention[layer, head], result.tokens(side), causal=result.is_causal(side),
        window=window_of(_layer_types(result, side), layer),
        head_labels=[_head_labels(attention.shape[1], result.num_key_value_heads)[head]],
        query_special=result.special(side), theme=theme, segments=_segments(result, side),
        title=f"{result.model_name} · {side} self-attention · layer {layer} · head {head}")


def _visible_max(values: np.ndarray, visible: np.ndarray, causal: bool = False) -> float:
    """Largest visible value; in causal attention the first row (always 1.0 on itself) is left out."""
    if causal and values.shape[-2] > 1:
        values, visible = values[..., 1:, :], visible[1:, :]
    shown = values[..., visible]
    top = float(shown.max()) if shown.size else 1.0
    return top if top > 0 else 1.0


def _head_labels(num_heads: int, num_key_value_heads: int | None) -> list[str]:
    if num_key_value_heads and num_key_value_heads < num_heads:
        group = num_heads // num_key_value_heads
        return [f"head {h} (shares keys with group {h // group})" for h in range(num_heads)]
    return [f"head {h}" for h in range(num_heads)]


def _layer_types(result: "AttentionResult", side: str) -> list[str] | None:
    # layer_types describe the self-attention of decoder-only models (Gemma's sliding layers)
    return result.layer_types if side == "decoder" and result.architecture == "decoder" else None


def _segments(result: "AttentionResult", side: str) -> list[tuple[str, int, int]]:
    return [(segment.name, segment.start, segment.end) for segment in result.segments if segment.side == side]


SEGMENT_LABEL_ROWS = 2
SEGMENT_LABEL_PLOT_CHARS = 170  # about how many 10 px characters fit across a one-head plot in the app


def _draw_segments(fig: go.Figure, segments: Sequence[tuple[str, int, int]], row_bounds: np.ndarray,
                   col_bounds: np.ndarray, theme: Theme) -> None:
    """Thin lines at segment starts on both axes and the segment name on top (single-panel figures)."""
    color = "#f97316"
    for name, start, _end in segments:
        row = int(np.searchsorted(row_bounds, start, side="right")) - 1
        col = int(np.searchsorted(col_bounds, start, side="right")) - 1
        if start <= 0 or row < 0:
            continue
        fig.add_shape(type="line", xref="x", yref="paper", x0=col - 0.5, x1=col - 0.5, y0=0, y1=1,
                      line={"color": color, "width": 1, "dash": "dot"})
        fig.add_shape(type="line", xref="paper", yref="y", x0=0, x1=1, y0=row - 0.5, y1=row - 0.5,
                      line={"color": color, "width": 1, "dash": "dot"})
    # Names of short segments (a one-token sink, a format marker) would overlap: each name goes on the first of
    # SEGMENT_LABEL_ROWS rows where it clears the name before it, or is left out (its dotted line stays).
    columns_per_char = (len(col_bounds) - 1) / SEGMENT_LABEL_PLOT_CHARS
    row_ends = [-np.inf] * SEGMENT_LABEL_ROWS  # where the last name on each row ends, in columns
    for name, start, _end in segments:
        col = int(np.searchsorted(col_bounds, max(start, 0), side="right")) - 1
        row = next((row for row, end in enumerate(row_ends) if col - 0.5 >= end), None)
        if row is None:
            continue
        row_ends[row] = col - 0.5 + (len(name) + 1) * columns_per_char
        fig.add_annotation(text=escape_text(name), x=col - 0.5, xref="x", y=1.0, yref="paper", yanchor="bottom",
                           yshift=12 * row, xanchor="left", showarrow=False, font={"size": 10, "color": color})
