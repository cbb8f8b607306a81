"""Per-head statistics (entropy, distance, first-token sink, previous-token) and attention rollout, with figures.

The statistics and the rollout are pure numpy on (layer, head, query_pos, key_pos) arrays; the plot_* functions
draw them. Every figure says in one sentence what the number means, and that attention is not an explanation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

from ._common import check_index, per_layer, side_of
from .labels import escape_text, wrap_lines
from .layer_view import plot_attention_heads
from .roles import PROBE_SENTENCE, short_role_grid
from .style import ATTENTION_CAVEAT, COLOR_SCALE, WORD_CELLS, Theme, base_layout, colorbar

if TYPE_CHECKING:
    from service.result import AttentionResult


@dataclass(frozen=True)
class Statistic:
    label: str     # short name for menus and titles
    unit: str      # colour bar title
    meaning: str   # one plain sentence for learners


STATISTICS: dict[str, Statistic] = {
    "entropy": Statistic(
        "Attention entropy", "bits",
        "Low entropy means a head focuses on a few tokens; high entropy means it spreads its attention "
        "over many (0 bits = one token, 1 bit = two equal tokens, log2(n) bits = all n alike)."),
    "distance": Statistic(
        "Mean attention distance", "tokens",
        "How many positions away, on average, a head looks: near 0 for local heads (self, neighbours), "
        "large for heads that reach far back or ahead."),
    "first_token": Statistic(
        "Attention on the first token (sink)", "share of attention",
        "The share of attention that goes to the first token; many heads park unused attention there "
        "(an 'attention sink'), so a high value often means 'nothing to do' rather than 'important'."),
    "previous_token": Statistic(
        "Previous-token score", "share of attention",
        "The share of attention each token gives to the token just before it; heads near 1 copy the "
        "previous token forward, a building block of induction heads."),
}
ROLLOUT_MEANING = ("Attention rollout (Abnar & Zuidema 2020) multiplies the head-averaged attention of every layer "
                   "up to this one, counting the residual connection, to estimate how much each position draws on "
                   "each input token.")


def _check(attention: np.ndarray) -> np.ndarray:
    attention = np.asarray(attention, dtype=np.float64)
    if attention.ndim < 2 or attention.shape[-1] == 0 or attention.shape[-2] == 0:
        raise ValueError(f"attention must be (..., query, key), got shape {attention.shape}")
    return attention


def attention_entropy(attention: np.ndarray) -> np.ndarray:
    """Mean over query rows of the entropy -Σ p·log2 p, in bits.

    attention: (..., query_pos, key_pos) rows summing to 1. Returns (...), e.g. (layer, head).
    """
    attention = _check(attention)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(attention > 0, -attention * np.log2(attention), 0.0)  # (..., query_pos, key_pos)
    return terms.sum(axis=-1).mean(axis=-1)


def mean_attention_distance(attention: np.ndarray) -> np.ndarray:
    """Mean over query rows of Σ_key p·|query_pos − key_pos|, in token positions. Returns (...)."""
    attention = _check(attention)
    queries, keys = attention.shape[-2:]
    distance = np.abs(np.arange(queries)[:, None] - np.arange(keys)[None, :])  # (query_pos, key_pos)
    return (attention * distance).sum(axis=-1).mean(axis=-1)


def first_token_share(attention: np.ndarray) -> np.ndarray:
    """Mean over query rows 1.. of the weight on key 0 (row 0 is left out: in causal attention it can only see
    itself). Returns (...)."""
    attention = _check(attention)
    rows = attention[..., 1:, 0] if attention.shape[-2] > 1 else attention[..., :, 0]  # (..., query_pos)
    return rows.mean(axis=-1)


def previous_token_score(attention: np.ndarray) -> np.ndarray:
    """Mean over query rows 1.. of the weight on key query_pos − 1. Returns (...); 0 for a one-token input."""
    attention = _check(attention)
    queries, keys = attention.shape[-2:]
    positions = np.arange(1, min(queries, keys + 1))
    if positions.size == 0:
        return np.zeros(attention.shape[:-2])
    return attention[..., positions, positions - 1].mean(axis=-1)


_FUNCTIONS = {"entropy": attention_entropy, "distance": mean_attention_distance,
              "first_token": first_token_share, "previous_token": previous_token_score}


def head_statistic(attention: np.ndarray, statistic: str) -> np.ndarray:
    """One statistic per head: attention (layer, head, query_pos, key_pos) → (layer, head) float32.

    statistic: "entropy" | "distance" | "first_token" | "previous_token" (see STATISTICS for meanings).
    """
    if statistic not in _FUNCTIONS:
        raise ValueError(f"unknown statistic {statistic!r}; choose one of {', '.join(_FUNCTIONS)}")
    if getattr(attention, "ndim", None) == 4:  # layer by layer: kept queries and keys never build the whole array
        return per_layer(attention, ("statistic", statistic), _FUNCTIONS[statistic]).astype(np.float32)
    return _FUNCTIONS[statistic](attention).astype(np.float32)


def attention_rollout(attention: np.ndarray, residual_weight: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020), cumulative per layer.

    attention: (layer, head, query_pos, key_pos) self-attention. Each layer's head mean A is mixed with the
    residual connection, Â = (1 − residual_weight)·A + residual_weight·I, rows renormalised, and multiplied up:
    R_0 = Â_0, R_l = Â_l · R_{l−1}. Returns (layer, query_pos, key_pos) float32; R_l rows sum to 1.
    """
    if not hasattr(attention, "per_layer"):
        attention = _check(attention)
    return np.stack(list(_rollout_steps(attention, attention.shape[0] - 1, residual_weight))).astype(np.float32)


def rollout_through(attention: Any, layer: int, residual_weight: float = 0.5) -> np.ndarray:
    """R_layer of attention_rollout, reading one layer at a time: (query_pos, key_pos) float32."""
    *_, last = _rollout_steps(attention, layer, residual_weight)
    return last.astype(np.float32)


def _rollout_steps(attention: Any, last: int, residual_weight: float) -> Any:
    """R_0 … R_last, each (query_pos, key_pos) float64, from attention[0] … attention[last] one at a time."""
    if attention.ndim != 4 or attention.shape[-1] != attention.shape[-2]:
        raise ValueError(f"rollout needs square self-attention (layer, head, query, key), got {attention.shape}")
    if not 0.0 <= residual_weight <= 1.0:
        raise ValueError(f"residual_weight must be in [0, 1], got {residual_weight}")
    identity = np.eye(attention.shape[-1])
    current = identity
    for layer in range(last + 1):
        heads_mean = np.asarray(attention[layer], dtype=np.float64).mean(axis=0)      # (query, key)
        mixed = (1 - residual_weight) * heads_mean + residual_weight * identity
        mixed /= mixed.sum(axis=-1, keepdims=True)
        current = mixed @ current  # (query_pos, key_pos): what position i draws from input token j so far
        yield current


def plot_statistic_map(values: np.ndarray, statistic: str, *, title: str | None = None,
                       roles: Sequence[Sequence[str]] | None = None, theme: Theme = "light") -> go.Figure:
    """Layer × head heatmap of one statistic (array level).

    values: (layer, head) from head_statistic. statistic: a key of STATISTICS (for the label and sentence).
    roles: optional [layer][head] role names (viz.roles.short_role_grid), written under each number and on hover.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"values must be (layer, head), got shape {values.shape}")
    info = STATISTICS[statistic]
    num_layers, num_heads = values.shape
    share = info.unit == "share of attention"
    finite = values[np.isfinite(values)]
    top = 1.0 if share or not finite.size or finite.max() <= 0 else float(finite.max())
    with_roles = roles is not None and len(roles) == num_layers and all(len(row) == num_heads for row in roles)
    fig = go.Figure(go.Heatmap(
        z=values, x=[f"head {h}" for h in range(num_heads)], y=[f"layer {layer}" for layer in range(num_layers)],
        coloraxis="coloraxis", textfont={"size": 10}, meta=WORD_CELLS if with_roles else None,
        texttemplate="%{z:.2f} · %{text}" if with_roles else "%{z:.2f}",
        text=[[escape_text(role) for role in row] for row in roles] if with_roles else None,
        hovertemplate="%{y} · %{x}<br>" + escape_text(info.label) + ": %{z:.3f}"
        + ("<br>role: %{text}" if with_roles else "") + "<extra></extra>"))
    # An explicit range on the shared colour axis, as every other figure has: the app redraws one gr.Plot with
    # Plotly.react, which leaves an auto-ranged colour bar NaN tall after a single-heatmap coloraxis figure.
    fig.update_layout(coloraxis={"colorscale": COLOR_SCALE, "cmin": 0.0, "cmax": top,
                                 "colorbar": colorbar(info.unit, theme)})
    fig.update_xaxes(type="category", side="top", showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    caption = escape_text(info.meaning) + "<br>" + ATTENTION_CAVEAT
    if with_roles:
        caption += "<br>" + escape_text("Role = the head's behaviour on the model's probe (see the view “Head roles”). "
                                        + PROBE_SENTENCE)
    return base_layout(fig, escape_text(title or info.label), theme, 120 + max(200, 34 * num_layers),
                       caption=_wrap(caption))


def plot_head_summary(result: "AttentionResult", statistic: str = "entropy", side: str | None = None, *,
                      roles: Sequence[Any] | None = None, theme: Theme = "light") -> go.Figure:
    """Layer × head map of a statistic of `result`'s self-attention; with `roles` (the model's head roles,
    viz.roles), each cell also names its head's role.

    Args: statistic "entropy" | "distance" | "first_token" | "previous_token"; side "encoder" | "decoder"
    (default result.main_side).
    """
    side = side_of(result, side)
    values = head_statistic(result.self_attention(side), statistic)  # (layer, head)
    title = f"{result.model_name} · {side} · {STATISTICS[statistic].label if statistic in STATISTICS else statistic}"
    grid = short_role_grid(roles) if roles else None
    if grid is not None and (len(grid), len(grid[0])) != values.shape:
        grid = None  # roles of another model shape: leave them out rather than mislabel heads
    return plot_statistic_map(values, statistic, title=title, roles=grid, theme=theme)


def plot_rollout(result: "AttentionResult", layer: int | None = None, side: str | None = None, *,
                 residual_weight: float = 0.5, theme: Theme = "light") -> go.Figure:
    """Attention rollout of `result` through `layer` (default: the last layer) as a query × key heatmap.

    Args: layer 0-based (rollout over layers 0..layer); side "encoder" | "decoder"; residual_weight as in
    attention_rollout.
    """
    side = side_of(result, side)
    attention = result.self_attention(side)  # (layer, head, query_pos, key_pos)
    last = attention.shape[0] - 1 if layer is None else check_index("layer", layer, attention.shape[0], "layers")
    rollout = rollout_through(attention, last, residual_weight)  # (query_pos, key_pos)
    return plot_attention_heads(
        rollout, result.tokens(side), causal=result.is_causal(side), head_labels=["rollout"],
        query_special=result.special(side), theme=theme, colorbar_title="rollout share",
        title=f"{result.model_name} · {side} · attention rollout through layer {last}",
        axis_titles=("input token", "position"), note=_wrap(escape_text(ROLLOUT_MEANING)))


def _wrap(caption: str, width: int = 130) -> str:
    """Break each `<br>`-separated line of a Plotly caption into lines of at most `width` characters."""
    return "<br>".join(line for paragraph in caption.split("<br>") for line in (wrap_lines(paragraph, width) or [""]))
