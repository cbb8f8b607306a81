"""Zoom: one block of a long result's attention (a range of query positions × a range of key positions) at full
resolution, where the whole-layer heatmaps pool tokens into blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from ._common import check_index, side_of
from .arrays import visibility_mask, window_of
from .layer_view import plot_attention_heads
from .style import Theme

if TYPE_CHECKING:
    from service.result import AttentionResult

ZOOM_MASKED_NOTE = "Grey: keys these queries cannot see (later tokens, or outside a sliding window)."


def plot_zoom(result: "AttentionResult", layer: int, rows: tuple[int, int], keys: tuple[int, int],
              head: int | None = None, side: str | None = None, *, theme: Theme = "light") -> go.Figure:
    """Queries rows[0]..rows[1]-1 × keys keys[0]..keys[1]-1 of one layer (mean over heads, or one head).

    Only those query rows are computed when the result keeps queries and keys (service/attention/on_demand.py).
    """
    side = side_of(result, side)
    attention = result.self_attention(side)                       # (layer, head, query_pos, key_pos)
    layer = check_index("layer", layer, attention.shape[0], "layers")
    if head is not None:
        head = check_index("head", head, attention.shape[1], "heads")
    tokens, special = result.tokens(side), result.special(side)
    (row_start, row_end), (key_start, key_end) = rows, keys
    if not (0 <= row_start < row_end <= len(tokens) and 0 <= key_start < key_end <= len(tokens)):
        raise ValueError(f"zoom ranges {row_start}–{row_end - 1} × {key_start}–{key_end - 1} are outside the "
                         f"{len(tokens)} tokens")
    picked = attention[layer:layer + 1, :, list(range(row_start, row_end))][0]  # (head, rows, key_pos)
    weights = (picked.mean(axis=0) if head is None else picked[head])[:, key_start:key_end]  # (rows, keys)
    window = window_of(result.layer_types, layer) if side == "decoder" and result.architecture == "decoder" else None
    seen = visibility_mask(len(tokens), len(tokens), result.is_causal(side), window)[row_start:row_end,
                                                                                      key_start:key_end]
    matrix = np.where(seen, weights, np.nan).astype(np.float32)   # (rows, keys), NaN = masked
    finite = matrix[np.isfinite(matrix)]
    which = "mean over heads" if head is None else f"head {head}"
    title = (f"{result.model_name} · {side} · layer {layer} · {which} · queries {row_start}–{row_end - 1} × "
             f"keys {key_start}–{key_end - 1} (full resolution)")
    return plot_attention_heads(
        matrix, tokens[row_start:row_end], tokens[key_start:key_end], head_labels=[which],
        query_special=special[row_start:row_end], key_special=special[key_start:key_end], title=title, theme=theme,
        color_max=float(finite.max()) if finite.size and finite.max() > 0 else 1.0,
        note=ZOOM_MASKED_NOTE if not seen.all() else None, first_positions=(row_start, key_start))
