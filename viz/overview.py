"""Model overview: every layer × head as a small thumbnail in one tiled heatmap, to spot heads worth a closer look."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from ._common import category_axis, per_layer, side_of
from .arrays import cell_budget, fit_to_budget, pool_attention, visibility_mask
from .labels import escape_text
from .style import ATTENTION_CAVEAT, COLOR_SCALE, Theme, base_layout, colorbar, theme_colors

if TYPE_CHECKING:
    from service.result import AttentionResult


def thumbnails(attention: np.ndarray, causal: bool, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool (layer, head, query_pos, key_pos) attention to (layer, head, q', k') with q', k' <= size.

    Each thumbnail is divided by its own largest visible value (the first row of causal attention, always 1.0 on
    itself, is left out of that maximum), so weak and strong heads both show their pattern.
    Returns (values in [0, 1] with NaN where masked, visible (q', k') bool).
    """
    num_queries, num_keys = attention.shape[-2:]
    visible = visibility_mask(num_queries, num_keys, causal)
    pooled = pool_attention(visible.astype(np.float32), visible, size, size)  # the blocks and what each one sees
    values = per_layer(attention, ("thumbnails", causal, size),                     # one layer at a time
                       lambda layer: pool_attention(layer, visible, size, size).values).astype(np.float32)
    # values: (layer, head, q', k')
    scale_rows = values[..., 1:, :] if causal and values.shape[-2] > 1 else values
    scale_visible = pooled.visible[1:, :] if causal and values.shape[-2] > 1 else pooled.visible
    top = np.where(scale_visible, scale_rows, 0).max(axis=(-2, -1), keepdims=True)  # (layer, head, 1, 1)
    values = np.clip(values / np.maximum(top, 1e-9), 0.0, 1.0)
    values[..., ~pooled.visible] = np.nan
    return values.astype(np.float32), pooled.visible


def plot_attention_overview(
    attention: np.ndarray,
    *,
    causal: bool = False,
    title: str = "All layers and heads",
    theme: Theme = "light",
    thumbnail_size: int | None = None,
    layer_labels: Sequence[str] | None = None,
) -> go.Figure:
    """All heads of all layers as thumbnails: rows = layers, columns = heads (array level).

    Args:
        attention: (layer, head, query_pos, key_pos); self- or cross-attention.
        causal: grey out key_pos > query_pos. thumbnail_size: max cells per thumbnail side (default: what fits
            the JSON budget). layer_labels: one y label per layer (default "layer 0" ...).
    Long inputs are pooled into blocks; every thumbnail is scaled to its own maximum.
    """
    if not hasattr(attention, "per_layer"):  # an array (attention kept as queries and keys stays as it is)
        attention = np.asarray(attention)
    if attention.ndim != 4:
        raise ValueError(f"attention must be (layer, head, query, key), got shape {attention.shape}")
    num_layers, num_heads = attention.shape[:2]
    layer_labels = list(layer_labels) if layer_labels is not None else [f"layer {layer}" for layer in range(num_layers)]
    if len(layer_labels) != num_layers:
        raise ValueError(f"{len(layer_labels)} layer labels for {num_layers} layers")
    colors = theme_colors(theme)

    def build(size: int) -> go.Figure:
        values, _ = thumbnails(attention, causal, size)  # (layer, head, q', k')
        rows, cols = values.shape[-2:]
        tiled = np.full((num_layers * (rows + 1) - 1, num_heads * (cols + 1) - 1), np.nan, dtype=np.float32)
        for layer in range(num_layers):
            for head in range(num_heads):
                top, left = layer * (rows + 1), head * (cols + 1)
                tiled[top:top + rows, left:left + cols] = values[layer, head]  # (q', k') thumbnail
        x_keys = [f"head {c // (cols + 1)}" + (f" · keys {c % (cols + 1)}/{cols}" if c % (cols + 1) < cols else f" gap {c}")
                  for c in range(tiled.shape[1])]
        y_keys = [escape_text(layer_labels[r // (rows + 1)]) + (f" · queries {r % (rows + 1)}/{rows}" if r % (rows + 1) < rows
                                                               else f" gap {r}") for r in range(tiled.shape[0])]
        fig = go.Figure(go.Heatmap(
            z=tiled, x=x_keys, y=y_keys, coloraxis="coloraxis", hoverongaps=False,
            hovertemplate="%{y}<br>%{x}<br>%{z:.2f} of this head's max<extra></extra>"))
        x_ticks = [x_keys[h * (cols + 1) + cols // 2] for h in range(num_heads)]
        y_ticks = [y_keys[layer * (rows + 1) + rows // 2] for layer in range(num_layers)]
        fig.update_xaxes(category_axis(x_keys, x_ticks, [f"head {h}" for h in range(num_heads)], 11), side="top",
                         constrain="domain")
        fig.update_yaxes(category_axis(y_keys, y_ticks, [escape_text(label) for label in layer_labels], 11,
                                       reverse=True), scaleanchor="x", constrain="domain")
        fig.update_layout(coloraxis={"colorscale": COLOR_SCALE, "cmin": 0.0, "cmax": 1.0,
                                     "colorbar": colorbar("weight ÷ head's max", theme)})
        # thin paper-coloured lines between thumbnails, so gaps do not read as masked cells
        for layer in range(1, num_layers):
            fig.add_shape(type="line", xref="paper", yref="y", x0=0, x1=1, y0=layer * (rows + 1) - 1,
                          y1=layer * (rows + 1) - 1, line={"color": colors["paper"], "width": 3})
        for head in range(1, num_heads):
            fig.add_shape(type="line", xref="x", yref="paper", y0=0, y1=1, x0=head * (cols + 1) - 1,
                          x1=head * (cols + 1) - 1, line={"color": colors["paper"], "width": 3})
        pooled_note = (f"{attention.shape[-2]} tokens summarised as {rows} blocks per thumbnail. "
                       if rows < attention.shape[-2] else "")
        caption = (pooled_note + "Each thumbnail is one head (rows: query → columns: key), scaled to its own maximum. "
                   "Pick a layer and head to see it in full.<br>" + ATTENTION_CAVEAT)
        per_layer = max(36, min(90, 1000 // max(1, num_layers)))
        return base_layout(fig, escape_text(title), theme, 140 + num_layers * per_layer, caption=caption)

    start = thumbnail_size or min(32, cell_budget(num_layers * num_heads, target=190_000))
    return fit_to_budget(build, min(start, max(attention.shape[-2:])), min_resolution=4)  # type: ignore[return-value]


def plot_model_overview(result: "AttentionResult", side: str | None = None, *, theme: Theme = "light",
                        thumbnail_size: int | None = None) -> go.Figure:
    """Thumbnails of every layer × head of `result`.

    Args:
        side: "encoder" | "decoder" (self-attention; default result.main_side) or "cross" (decoder → encoder).
        thumbnail_size: max cells per thumbnail side (default: what fits the budget).
    """
    if side == "cross":
        if result.cross_attention is None:
            raise ValueError(f"this {result.architecture} result has no cross-attention")
        attention, causal = result.cross_attention, False  # (layer, head, decoder_pos, encoder_pos)
        what = "cross-attention (target → source)"
    else:
        side = side_of(result, side)
        attention, causal = result.self_attention(side), result.is_causal(side)  # (layer, head, query_pos, key_pos)
        what = f"{side} self-attention"
    return plot_attention_overview(attention, causal=causal, theme=theme, thumbnail_size=thumbnail_size,
                                   title=f"{result.model_name} · {what} · all layers × heads")
