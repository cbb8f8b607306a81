"""Cross-attention alignment for translation: target (decoder) tokens × source (encoder) tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from ._common import check_index
from .layer_view import plot_attention_heads
from .style import Theme

if TYPE_CHECKING:
    from service.result import AttentionResult


def plot_alignment(
    cross_attention: np.ndarray,
    target_tokens: Sequence[str],
    source_tokens: Sequence[str],
    *,
    target_special: Sequence[bool] | None = None,
    source_special: Sequence[bool] | None = None,
    title: str = "Cross-attention: which source tokens each target token looks at",
    theme: Theme = "light",
    mark_strongest: bool = True,
    axis_titles: tuple[str, str] = ("source token (encoder input)", "target token (decoder output)"),
    note: str | None = None,
) -> go.Figure:
    """One alignment heatmap (array level).

    Args:
        cross_attention: (target_pos, source_pos) weights, rows summing to 1 (e.g. one head, or a mean).
        target_tokens: T decoder tokens (rows); source_tokens: S encoder tokens (columns).
        mark_strongest: draw a ring on the strongest source token of each target row.
        axis_titles: (x title, y title). note: one more caption line (HTML-safe text, not escaped here).
        A row of NaN (a target token that cannot see the source) is drawn grey and gets no ring.
    """
    matrix = np.asarray(cross_attention)
    if matrix.ndim != 2:
        raise ValueError(f"cross_attention must be (target, source), got shape {matrix.shape}")
    finite = matrix[np.isfinite(matrix)]
    fig = plot_attention_heads(
        matrix, target_tokens, source_tokens, causal=False, head_labels=[title],
        query_special=target_special, key_special=source_special, title=title, theme=theme,
        color_max=float(finite.max()) if finite.size and finite.max() > 0 else 1.0,
        axis_titles=axis_titles, note=note)
    heatmap = fig.data[0]
    if mark_strongest and len(heatmap.x) == matrix.shape[1] and len(heatmap.y) == matrix.shape[0]:
        seen = np.isfinite(matrix).any(axis=1)  # (target_pos,) rows that can see the source
        strongest = np.where(np.isfinite(matrix), matrix, -1.0).argmax(axis=1)  # (target_pos,) source index
        fig.add_trace(go.Scatter(
            x=[heatmap.x[j] for j, ok in zip(strongest, seen) if ok],
            y=[y for y, ok in zip(heatmap.y, seen) if ok], mode="markers", name="strongest source",
            marker={"symbol": "circle-open", "size": 10, "color": "#f97316", "line": {"width": 2}},
            hoverinfo="skip", showlegend=False))
        # markers must not widen the category axes beyond the heatmap
        fig.update_xaxes(range=[-0.5, len(heatmap.x) - 0.5])
        fig.update_yaxes(range=[len(heatmap.y) - 0.5, -0.5], autorange=False)
    return fig


def plot_cross_attention(result: "AttentionResult", layer: int | None = None, head: int | None = None, *,
                         theme: Theme = "light") -> go.Figure:
    """Cross-attention of an encoder-decoder result as target × source alignment.

    Args:
        layer: 0-based layer, or None for the mean over all layers.
        head: 0-based head, or None for the mean over heads.
    """
    cross = result.cross_attention  # (layer, head, decoder_pos, encoder_pos)
    if cross is None:
        raise ValueError(f"this {result.architecture} result has no cross-attention "
                         "(only encoder-decoder models such as Marian translate with one)")
    num_layers, num_heads = cross.shape[:2]
    if layer is not None:
        layer = check_index("layer", layer, num_layers, "layers")
    if head is not None:
        head = check_index("head", head, num_heads, "heads")
    per_layer = cross[layer:layer + 1] if layer is not None else cross  # (layer', head, decoder_pos, encoder_pos)
    per_head = per_layer[:, head:head + 1] if head is not None else per_layer  # (layer', head', target, source)
    matrix = per_head.mean(axis=(0, 1))  # (decoder_pos, encoder_pos)
    where = ("all layers" if layer is None else f"layer {layer}") + " · " + \
            ("mean over heads" if head is None else f"head {head}")
    return plot_alignment(matrix, result.tokens("decoder"), result.tokens("encoder"),
                          target_special=result.special("decoder"), source_special=result.special("encoder"),
                          title=f"{result.model_name} · cross-attention · {where}",
                          theme=theme)
