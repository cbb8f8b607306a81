"""Helpers shared by the figure modules: argument checks, result access and category axes for (pooled) tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .labels import plot_labels

if TYPE_CHECKING:  # viz never imports the service package at run time (its __init__ may load models)
    from service.result import AttentionResult  # noqa: F401


def check_index(name: str, index: int, count: int, unit: str) -> int:
    """Validate a layer/head/position index and say the valid range when it is wrong."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {index!r}")
    if not 0 <= int(index) < count:
        raise ValueError(f"{name} {index} is out of range: there are {count} {unit} (0–{count - 1})")
    return int(index)


def check_heads_array(attention: np.ndarray, query_tokens: Sequence[str], key_tokens: Sequence[str]) -> np.ndarray:
    """(head, query_pos, key_pos) float array whose last two sizes match the token counts."""
    attention = np.asarray(attention)
    if attention.ndim == 2:
        attention = attention[None]  # (1, query_pos, key_pos)
    if attention.ndim != 3:
        raise ValueError(f"attention must be (head, query, key) or (query, key), got shape {attention.shape}")
    _, queries, keys = attention.shape
    if queries != len(query_tokens) or keys != len(key_tokens):
        raise ValueError(f"attention has {queries}×{keys} positions but there are {len(query_tokens)} query tokens "
                         f"and {len(key_tokens)} key tokens")
    return attention


def per_layer(attention: Any, key: Any, reduce: Any) -> np.ndarray:
    """np.stack([reduce(attention[l]) for each layer l]): one layer's (head, query_pos, key_pos) at a time, so
    attention kept as queries and keys (service/attention/on_demand.py) never builds the whole array; it caches
    the result under `key` (hashable: what was computed and with which settings)."""
    cached = getattr(attention, "per_layer", None)
    if cached is not None:
        return cached(key, reduce)
    return np.stack([reduce(np.asarray(attention[layer])) for layer in range(attention.shape[0])])


def side_of(result: Any, side: str | None) -> str:
    side = side or result.main_side
    if side not in ("encoder", "decoder"):
        raise ValueError(f"side must be 'encoder' or 'decoder', got {side!r}")
    return side


def block_axis(labels: Sequence[str], bounds: np.ndarray, max_ticks: int,
               first: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Category keys (unique, shown in hover), tick values and tick texts for tokens grouped into blocks.

    `labels` are escaped display labels, `bounds` the block starts plus the end (see arrays.block_bounds);
    `first` is the position of labels[0] in the whole sequence (a zoomed block), so hovers name real positions.
    """
    keys, texts = [], []
    for start, end in zip(bounds[:-1], bounds[1:]):
        start, end = int(start), int(end)
        if end - start == 1:
            keys.append(f"#{first + start} {labels[start]}")
            texts.append(labels[start])
        else:
            keys.append(f"#{first + start}–{first + end - 1} {labels[start]} … {labels[end - 1]}")
            texts.append(f"{labels[start]}…")
    stride = max(1, int(np.ceil(len(keys) / max_ticks)))
    return keys, keys[::stride], texts[::stride]


def category_axis(keys: list[str], tickvals: list[str], ticktext: list[str], font_size: int,
                  reverse: bool = False, show: bool = True) -> dict:
    # keys are unique and every trace lists them in order, so the default "trace" category order is right;
    # repeating them as categoryarray would cost ~4 KB per panel
    axis = {"type": "category", "tickmode": "array",
            "tickvals": tickvals, "ticktext": ticktext, "tickfont": {"size": font_size}, "showgrid": False,
            "zeroline": False, "showticklabels": show, "automargin": True}
    if reverse:
        axis["autorange"] = "reversed"
    return axis


def tick_font_size(num_ticks: int) -> int:
    return int(max(7, min(12, 520 / max(1, num_ticks))))


__all__ = ["check_index", "check_heads_array", "per_layer", "side_of", "block_axis", "category_axis", "tick_font_size",
           "plot_labels"]
