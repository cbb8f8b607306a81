"""Pure numpy helpers for the views: visibility masks, block pooling of long sequences, the figure size budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# One view update may send at most this many bytes of figure JSON (checked at 128 tokens in the tests).
FIGURE_BUDGET_BYTES = 250_000
# Aim a little below the budget so a view never needs more than one rebuild.
_TARGET_BYTES = 235_000


def visibility_mask(num_queries: int, num_keys: int, causal: bool, window: int | None = None) -> np.ndarray:
    """(query_pos, key_pos) bool: True where the query can see the key.

    Causal: key <= query. Sliding window (Gemma's local layers): also key > query - window.
    """
    query = np.arange(num_queries)[:, None]  # (query_pos, 1)
    key = np.arange(num_keys)[None, :]       # (1, key_pos)
    visible = np.ones((num_queries, num_keys), dtype=bool)
    if causal:
        visible &= key <= query
    if window is not None:
        visible &= key > query - window
    return visible


def window_of(layer_types: Sequence[str] | None, layer: int) -> int | None:
    """The sliding-window size of `layer` from AttentionResult.layer_types ("sliding:512"), else None."""
    if not layer_types or layer >= len(layer_types):
        return None
    kind = layer_types[layer]
    if kind.startswith("sliding:"):
        try:
            return int(kind.split(":", 1)[1])
        except ValueError:
            return None
    return None


def block_bounds(length: int, max_blocks: int) -> np.ndarray:
    """Start indices of at most `max_blocks` contiguous blocks covering range(length), plus `length` at the end."""
    blocks = max(1, min(length, max_blocks))
    return np.unique(np.linspace(0, length, blocks + 1).round().astype(int))


@dataclass(frozen=True)
class Pooled:
    """Attention pooled into blocks: values (..., query_block, key_block), visible (query_block, key_block)."""

    values: np.ndarray
    visible: np.ndarray
    row_bounds: np.ndarray  # (query_blocks + 1,) block starts and the end
    col_bounds: np.ndarray  # (key_blocks + 1,)

    @property
    def pooled(self) -> bool:
        return len(self.row_bounds) - 1 < int(self.row_bounds[-1]) or len(self.col_bounds) - 1 < int(self.col_bounds[-1])


def pool_attention(attention: np.ndarray, visible: np.ndarray, max_rows: int, max_cols: int) -> Pooled:
    """Shrink (..., query_pos, key_pos) attention to at most max_rows × max_cols blocks.

    A cell is the attention a query block gives a key block: mean over its queries of the sum over its keys,
    so rows still sum to 1. A block is hidden (masked) only when no query in it can see any key in it.
    """
    num_queries, num_keys = attention.shape[-2:]
    row_bounds = block_bounds(num_queries, max_rows)
    col_bounds = block_bounds(num_keys, max_cols)
    if len(row_bounds) - 1 == num_queries and len(col_bounds) - 1 == num_keys:
        return Pooled(attention.astype(np.float32, copy=False), visible, row_bounds, col_bounds)
    values = np.add.reduceat(attention.astype(np.float64), row_bounds[:-1], axis=-2)  # (..., query_block, key_pos)
    values = values / np.diff(row_bounds)[:, None]                                  # mean over queries in a block
    values = np.add.reduceat(values, col_bounds[:-1], axis=-1)                        # (..., query_block, key_block)
    seen = np.add.reduceat(np.add.reduceat(visible.astype(np.int64), row_bounds[:-1], axis=0), col_bounds[:-1], axis=1)
    return Pooled(values.astype(np.float32), seen > 0, row_bounds, col_bounds)


def masked_float32(values: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """float32 copy of values with NaN where not visible (Plotly draws NaN as a gap, i.e. "masked")."""
    out = np.array(values, dtype=np.float32, copy=True)
    out[..., ~visible] = np.nan
    return out


def fit_to_budget(build: Callable[[int], object], start_resolution: int, min_resolution: int = 8,
                  budget: int = _TARGET_BYTES) -> object:
    """Call build(resolution) with shrinking resolution until len(fig.to_json()) <= budget (or the minimum)."""
    resolution = start_resolution
    while True:
        figure = build(resolution)
        size = len(figure.to_json())  # type: ignore[attr-defined]
        if size <= budget or resolution <= min_resolution:
            return figure
        resolution = max(min_resolution, int(resolution * min(0.9, (budget / size) ** 0.5)))


def cell_budget(num_panels: int, bytes_per_value: float = 4 * 4 / 3, target: int = 200_000) -> int:
    """Side length so num_panels square float32 panels fit in `target` bytes of base64."""
    return max(8, int((target / (num_panels * bytes_per_value)) ** 0.5))
