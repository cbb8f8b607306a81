"""Views of what the produced tokens looked at: the answer focus, the share per segment, the source alignment.

The numbers come from service.analysis.segments (pure numpy, from a kept result): rows are the tokens the model
produced (answer, translation, label, generated text); the user's own text stays at full resolution while each
part of the prompt around it (instruction, demonstration k, format words, first token) is summed into one column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from service.analysis.segments import (HIDDEN, FocusColumn, SegmentShare, answer_focus, produced_positions,
                                       segment_shares, source_alignment)

from ._common import check_index, tick_font_size
from .arrays import block_bounds, fit_to_budget, visibility_mask, window_of
from .cross_view import plot_alignment
from .labels import display_token, escape_text, plot_labels, shorten, wrap_lines
from .style import ATTENTION_CAVEAT, COLOR_SCALE, MASKED_NOTE, Theme, base_layout, colorbar, theme_colors

if TYPE_CHECKING:
    from service.result import AttentionResult

SEGMENT_SCALE = "Oranges"      # colour scale of the summed (collapsed) columns, apart from the one-token scale
MAX_FOCUS_ROWS = 96            # produced tokens beyond this are pooled into blocks (mean over the block's rows)
MAX_FOCUS_COLUMNS = 192        # one-token columns beyond this are pooled into blocks (sum over the block's keys)
HOVER_TEXT_CHARS = 240         # a collapsed segment's text in the hover, shortened to this
MAX_TICKS = 90                 # tick labels on the one-token columns at most
CAPTION_CHARS = 125            # caption lines are wrapped to this many characters
SHARES_EXPLAINED = ("Each bar is one layer: the attention of the tokens the model produced, split over the parts of "
                    "the prompt (mean over those tokens{heads}). Each bar sums to 1.")


# --- when the views apply ------------------------------------------------------------------------------------
def has_answer_focus(result: "AttentionResult") -> bool:
    """Produced tokens and some of the user's input on the same side (Marian's source sits on the other side:
    its cross-attention view shows it)."""
    return bool(produced_positions(result)) and any(
        segment.role == "input" and segment.side == result.main_side for segment in result.segments)


def has_segment_shares(result: "AttentionResult") -> bool:
    """Produced tokens whose attention can be split by segment (every task and architecture with segments)."""
    return bool(produced_positions(result))


def has_source_alignment(result: "AttentionResult") -> bool:
    """A decoder-only translation: its self-attention holds the analogue of cross-attention."""
    return result.task == "translation" and result.architecture == "decoder" and has_answer_focus(result)


# --- the answer focus ----------------------------------------------------------------------------------------
def plot_answer_focus(result: "AttentionResult", layer: int, head: int | None = None, *,
                      theme: Theme = "light") -> go.Figure:
    """Produced tokens (rows) × the user's tokens and the summed prompt segments (columns), one layer.

    Args:
        result: an AttentionResult with segments (see service.result.Segment roles).
        layer: 0-based layer. head: 0-based head, or None for the mean over heads.
    Two panels share the rows: on the left each part of the prompt around the user's text (instruction,
    demonstration k, format words, first token) summed into one column, on the right the user's text and the
    answer token by token, each with its own colour scale so the user's tokens stay readable beside the large
    sums. Cells a row cannot see (later answer tokens, keys outside a sliding window) are grey. Long inputs are
    pooled into blocks (said in the caption) so the figure stays under the update budget.
    """
    attention = result.self_attention()  # (layer, head, query_pos, key_pos)
    layer = check_index("layer", layer, attention.shape[0], "layers")
    if head is not None:
        head = check_index("head", head, attention.shape[1], "heads")
    focus = answer_focus(result, layer)
    weights = focus.weights.mean(axis=0) if head is None else focus.weights[head]  # (row, column)
    side = focus.side
    tokens, special = result.tokens(side), result.special(side)
    window = window_of(result.layer_types if result.architecture == "decoder" else None, layer)
    seen = visibility_mask(len(tokens), len(tokens), result.is_causal(side), window)[focus.rows]  # (row, key_pos)
    visible = np.stack([seen[:, column.positions].any(axis=1) for column in focus.columns], axis=1)  # (row, column)
    names = _segment_names(result, side)
    where = f"layer {layer} · " + ("mean over heads" if head is None else f"head {head}")
    title = f"{result.model_name} · answer focus · {where}"

    def build(resolution: int) -> go.Figure:
        groups = _column_groups(focus.columns, resolution)
        row_bounds = block_bounds(len(focus.rows), min(MAX_FOCUS_ROWS, resolution))
        z, shown = _pool(weights, visible, row_bounds, groups)   # (row_block, column_group)
        z = np.where(shown, z, np.nan).astype(np.float32)         # NaN = masked (drawn grey)
        collapsed = np.array([focus.columns[group[0]].collapsed for group in groups])
        x_keys, x_text = _column_axis(focus.columns, groups, tokens, special)
        y_keys, y_text = _row_axis(focus.produced, row_bounds, tokens, special)  # labelled by what they chose
        summed, single = np.flatnonzero(collapsed), np.flatnonzero(~collapsed)
        left = min(0.3, max(0.12, 0.035 * len(summed))) if len(summed) else 0.0
        gap = 0.015 if len(summed) else 0.0
        traces, layout = [], {}
        for axis, picked, domain, scale, hover in (
                ("x", summed, [0.0, left], "coloraxis2", "summed weight"),
                ("x2", single, [left + gap, 1.0], "coloraxis", "weight")):
            if not len(picked):
                continue
            keys = [x_keys[i] for i in picked]
            ticks = picked if axis == "x" else single[_tick_indexes(len(single))]
            traces.append(go.Heatmap(
                z=z[:, picked], x=keys, y=y_keys, coloraxis=scale, hoverongaps=False, xaxis=axis, yaxis="y",
                hovertemplate=f"produced %{{y}}<br>looks at %{{x}}<br>{hover} %{{z:.3f}}<extra></extra>"))
            # an explicit range: the segment names above the columns would otherwise widen the axis
            layout["xaxis" if axis == "x" else "xaxis2"] = {
                "type": "category", "domain": domain, "anchor": "y", "tickmode": "array",
                "tickvals": [x_keys[i] for i in ticks], "ticktext": [x_text[i] for i in ticks],
                "range": [-0.5, len(keys) - 0.5], "tickangle": -60, "showgrid": False, "zeroline": False,
                "tickfont": {"size": tick_font_size(len(ticks))}, "automargin": True}
        fig = go.Figure(traces, layout)
        fig.update_layout(
            coloraxis={"colorscale": COLOR_SCALE, "cmin": 0.0, "cmax": _top(z[:, single]),
                       "colorbar": {**colorbar("one token", theme), "len": 0.46, "y": 1.0, "yanchor": "top"}},
            coloraxis2={"colorscale": SEGMENT_SCALE, "cmin": 0.0, "cmax": _top(z[:, summed]),
                        "colorbar": {**colorbar("summed part", theme), "len": 0.46, "y": 0.0, "yanchor": "bottom"}},
            yaxis={"type": "category", "tickmode": "array", "tickvals": y_keys, "ticktext": y_text,
                   "autorange": "reversed", "tickfont": {"size": tick_font_size(len(y_keys))}, "showgrid": False,
                   "zeroline": False, "automargin": True, "title": {"text": "produced token"},
                   "anchor": "x" if len(summed) else "x2"})
        muted = theme_colors(theme)["muted"]
        if len(summed):
            fig.add_annotation(text="summed parts", x=0.0, xref="paper", y=1.0, yref="paper",
                               yanchor="bottom", xanchor="left", showarrow=False, font={"size": 11, "color": muted})
        _name_runs(fig, focus.columns, [groups[i] for i in single], names, muted)
        parts = _part_names([focus.columns[groups[i][0]].label for i in summed])
        notes = [_rows_sentence(result, side),
                 (f"Left: the rest of the prompt ({parts}), each part summed into one column (hover shows its text). "
                  if parts else "") + "Right: your text and the answer, token by token."
                 + (" Each side has its own colour bar." if parts else "")]
        if result.is_causal(side) or window is not None:
            notes.append(MASKED_NOTE + ".")
        if window is not None and focus.rows and max(focus.rows) >= window:
            notes.append(f"Layer {layer} is a sliding-window layer: each token sees only the last {window} tokens "
                         "(itself included), so text before that is grey here.")
        if len(row_bounds) - 1 < len(focus.rows) or len(groups) < len(focus.columns):
            notes.append(f"Long input: {len(focus.rows)} produced tokens × {len(focus.columns)} columns shown as "
                         f"{len(row_bounds) - 1} × {len(groups)} blocks (rows averaged, columns summed; hover shows "
                         "each block's span).")
        notes.append(ATTENTION_CAVEAT)
        height = int(min(760, max(440, 300 + 20 * len(y_keys))))
        return base_layout(fig, escape_text(title), theme, height, caption=_caption(notes))

    return fit_to_budget(build, MAX_FOCUS_COLUMNS)  # type: ignore[return-value]


def _tick_indexes(count: int, max_ticks: int = MAX_TICKS) -> np.ndarray:
    """Evenly spaced indexes of the one-token columns that get a tick label (all of them up to `max_ticks`)."""
    return np.arange(0, count, max(1, int(np.ceil(count / max_ticks))))


def _part_names(labels: Sequence[str]) -> str:
    """"first token, instruction, demonstrations, format" from the summed columns' labels."""
    names = ["demonstrations" if label.startswith("demonstration") else label for label in labels]
    return ", ".join(dict.fromkeys(names))


def _rows_sentence(result: "AttentionResult", side: str) -> str:
    if result.is_causal(side):
        return ("Rows: each token the model produced, with the attention that chose it: a decoder predicts the next "
                "token, so that is the row of the position just before it.")
    return "Rows: the tokens the answer is read from (the answer span, or the classifier token)."


def _column_groups(columns: Sequence[FocusColumn], max_columns: int) -> list[list[int]]:
    """Column indexes grouped into what is drawn: every collapsed column alone; runs of one-token columns of the
    same role split into blocks when there are more than `max_columns` one-token columns in all."""
    runs: list[list[int]] = []
    for index, column in enumerate(columns):
        if not column.collapsed and runs and not columns[runs[-1][-1]].collapsed \
                and columns[runs[-1][-1]].role == column.role:
            runs[-1].append(index)
        else:
            runs.append([index])
    singles = sum(len(run) for run in runs if not columns[run[0]].collapsed)
    room = max(1, max_columns - (len(runs) - sum(1 for run in runs if not columns[run[0]].collapsed)))
    groups: list[list[int]] = []
    for run in runs:
        if columns[run[0]].collapsed or singles <= room:
            groups += [[index] for index in run] if not columns[run[0]].collapsed else [run]
            continue
        bounds = block_bounds(len(run), max(1, round(len(run) * room / singles)))
        groups += [run[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
    return groups


def _pool(weights: np.ndarray, visible: np.ndarray, row_bounds: np.ndarray,
          groups: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(row_block, group) weights (mean over a block's rows of the sum over its columns) and visibility (any)."""
    columns = np.stack([weights[:, group].sum(axis=1) for group in groups], axis=1)     # (row, group)
    seen = np.stack([visible[:, group].any(axis=1) for group in groups], axis=1)       # (row, group)
    z = np.add.reduceat(columns.astype(np.float64), row_bounds[:-1], axis=0) / np.diff(row_bounds)[:, None]
    return z, np.add.reduceat(seen.astype(np.int64), row_bounds[:-1], axis=0) > 0


def _column_axis(columns: Sequence[FocusColumn], groups: list[list[int]], tokens: Sequence[str],
                 special: Sequence[bool]) -> tuple[list[str], list[str]]:
    """Unique category keys (what the hover shows) and tick texts of the drawn columns."""
    labels = plot_labels(tokens, special)
    keys, texts = [], []
    for group in groups:
        first = columns[group[0]]
        if first.collapsed:
            count = len(first.positions)
            keys.append(f"{escape_text(first.label)} ({count} token{'s' if count != 1 else ''}):<br>"
                        + _hover_text(first.text))
            texts.append(escape_text(first.label))
        elif len(group) == 1:
            position = first.positions[0]
            keys.append(f"#{position} {labels[position]}")
            texts.append(labels[position])
        else:
            start, end = first.positions[0], columns[group[-1]].positions[-1]
            keys.append(f"#{start}–{end} {labels[start]} … {labels[end]}")
            texts.append(f"{labels[start]}…")
    return keys, texts


def _row_axis(rows: Sequence[int], bounds: np.ndarray, tokens: Sequence[str],
              special: Sequence[bool]) -> tuple[list[str], list[str]]:
    labels = plot_labels(tokens, special)
    keys, texts = [], []
    for start, end in zip(bounds[:-1], bounds[1:]):
        first, last = rows[int(start)], rows[int(end) - 1]
        if end - start == 1:
            keys.append(f"#{first} {labels[first]}")
            texts.append(labels[first])
        else:
            keys.append(f"#{first}–{last} {labels[first]} … {labels[last]}")
            texts.append(f"{labels[first]}…")
    return keys, texts


def _hover_text(text: str) -> str:
    """A collapsed segment's text for the hover: whitespace made one space, shortened, escaped, wrapped."""
    flat = " ".join(display_token(text).replace("␣", " ").replace("⏎", " ⏎ ").split())
    return "<br>".join(escape_text(line) for line in wrap_lines(shorten(flat, HOVER_TEXT_CHARS), 60))


def _segment_names(result: "AttentionResult", side: str) -> dict[int, str]:
    """Position → name of the input/output segment that holds it (to name the runs of one-token columns)."""
    return {position: segment.name for segment in result.segments if segment.side == side
            and segment.role in ("input", "output") for position in range(segment.start, segment.end)}


def _name_runs(fig: go.Figure, columns: Sequence[FocusColumn], groups: list[list[int]], names: dict[int, str],
               color: str) -> None:
    """The segment name ("context", "question", "answer") above the first of its one-token columns (right panel)."""
    previous = None
    for index, group in enumerate(groups):
        name = names.get(columns[group[0]].positions[0])
        if name and name != previous:  # x: the left edge of the run's first cell (category axes count from 0)
            fig.add_annotation(text=escape_text(name), x=index - 0.5, xref="x2", y=1.0, yref="paper", yanchor="bottom",
                               xanchor="left", showarrow=False, font={"size": 11, "color": color})
        previous = name


def _top(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 1.0
    return top if top > 0 else 1.0


def _caption(notes: Sequence[str]) -> str:
    return "<br>".join(escape_text(line) for note in notes for line in wrap_lines(note, CAPTION_CHARS))


# --- the share per segment -----------------------------------------------------------------------------------
ROLE_COLORS = {"sink": ["#9ca3af"], "output": ["#16a34a", "#4ade80"], "input": ["#2563eb", "#38bdf8", "#1e3a8a"],
               "scaffold": ["#f59e0b", "#fbbf24", "#d97706", "#fcd34d", "#b45309", "#fde68a", "#92400e"],
               "other": ["#e5e7eb", "#6b7280"]}
INSTRUCTION_COLOR, FORMAT_COLOR = "#a78bfa", "#e9d5ff"


def segment_colors(shares: Sequence[SegmentShare]) -> dict[str, str]:
    """A colour per segment name: blue = your text, green = the answer, orange = demonstrations, violet = the
    instruction and format words, grey = the first token and the rest (the same in every figure)."""
    colors, used = {}, {role: 0 for role in ROLE_COLORS}
    for share in shares:
        if share.name == "instruction":
            colors[share.name] = INSTRUCTION_COLOR
        elif share.name == "format":
            colors[share.name] = FORMAT_COLOR
        else:
            role = share.role if share.role in ROLE_COLORS else "other"
            palette = ROLE_COLORS[role]
            colors[share.name] = palette[used[role] % len(palette)]
            used[role] += 1
    return colors


def _share_bars(shares: Sequence[SegmentShare], colors: dict[str, str], axis: str = "",
                shown_in_legend: set[str] | None = None) -> list[go.Bar]:
    bars = []
    for share in shares:
        legend = shown_in_legend is None or share.name not in shown_in_legend
        if shown_in_legend is not None:
            shown_in_legend.add(share.name)
        name = escape_text(share.name)
        bars.append(go.Bar(
            x=list(range(len(share.share_by_layer))), y=np.asarray(share.share_by_layer, dtype=np.float32),
            name=name, legendgroup=name, showlegend=legend, marker={"color": colors[share.name], "line": {"width": 0}},
            xaxis=f"x{axis}", yaxis=f"y{axis}",
            hovertemplate=f"{name}<br>layer %{{x}}: %{{y:.1%}}<extra></extra>"))
    return bars


def plot_segment_shares(result: "AttentionResult", head: int | None = None, *, theme: Theme = "light") -> go.Figure:
    """Stacked bars, one per layer: the produced tokens' share of attention on each segment (same-name segments
    counted together). head: 0-based head, or None for the mean over heads. Every bar sums to 1."""
    if head is not None:
        head = check_index("head", head, result.num_heads, "heads")
    shares = segment_shares(result, head=head)
    fig = go.Figure(_share_bars(shares, segment_colors(shares)))
    which = "mean over heads" if head is None else f"head {head}"
    caption = _shares_caption(result, shares, " and over heads" if head is None else f", head {head}")
    _shares_layout(fig, f"{result.model_name} · where the produced tokens' attention goes, by segment · {which}",
                   caption, theme)
    fig.update_xaxes(title={"text": "layer"}, dtick=1 if result.num_layers <= 24 else None)
    return fig


def _shares_caption(result: "AttentionResult", shares: Sequence[SegmentShare], heads: str) -> list[str]:
    """What the bars mean (true for this result's segments), then the caveat."""
    lines = [SHARES_EXPLAINED.format(heads=heads)]
    outputs = [f'"{share.name}"' for share in shares if share.role == "output"]
    if outputs and result.is_causal(result.main_side):
        lines[0] += f' {" and ".join(outputs)}: the produced tokens themselves (each sees those before it).'
    if any(share.name == HIDDEN for share in shares):
        lines.append(f'"{HIDDEN}": weight on tokens cut off before the attention was kept.')
    return lines + [ATTENTION_CAVEAT]


def _shares_layout(fig: go.Figure, title: str, caption: Sequence[str], theme: Theme, height: int = 420) -> None:
    """Stacked bars on a 0–100 % axis, the legend in stack order, and the caption under the plot."""
    lines = [escape_text(line) for note in caption for line in wrap_lines(note, CAPTION_CHARS)]
    base_layout(fig, escape_text(title), theme, height)
    colors = theme_colors(theme)
    fig.update_layout(barmode="stack", bargap=0.15, plot_bgcolor=colors["paper"],
                      legend={"traceorder": "reversed", "title": {"text": "segment"}},
                      margin={"l": 70, "r": 30, "t": 60, "b": 70 + 16 * len(lines)},
                      height=height + 16 * len(lines))
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title={"text": "share of attention"}, showgrid=True,
                     gridcolor=colors["grid"])
    fig.update_xaxes(showgrid=False)
    fig.add_annotation(text="<br>".join(lines), xref="paper", yref="paper", x=0, y=0, yshift=-50, xanchor="left",
                       yanchor="top", showarrow=False, align="left", font={"size": 11, "color": colors["muted"]})


def plot_shot_comparison(few_shot: "AttentionResult", zero_shot: "AttentionResult", *,
                         theme: Theme = "light") -> go.Figure:
    """The segment shares (mean over heads) of the same input with demonstrations and without, side by side."""
    few, zero = segment_shares(few_shot), segment_shares(zero_shot)
    colors = segment_colors(few + [share for share in zero if share.name not in {s.name for s in few}])
    legend: set[str] = set()
    fig = go.Figure(_share_bars(few, colors, "", legend) + _share_bars(zero, colors, "2", legend))
    gap = 0.06
    fig.update_layout(xaxis={"domain": [0, 0.5 - gap / 2], "title": {"text": "layer"}},
                      xaxis2={"domain": [0.5 + gap / 2, 1], "anchor": "y2", "title": {"text": "layer"}},
                      yaxis2={"anchor": "x2", "matches": "y", "showticklabels": False})
    for x, text in ((0.0, f"few-shot: {_count_demonstrations(few_shot)} demonstrations"),
                    (0.5 + gap / 2, "zero-shot: no demonstrations")):
        fig.add_annotation(text=escape_text(text), xref="paper", yref="paper", x=x, y=1.0, xanchor="left",
                           yanchor="bottom", showarrow=False, font={"size": 13})
    caption = _shares_caption(few_shot, few, " and over heads")
    _shares_layout(fig, f"{few_shot.model_name} · the same input with and without demonstrations", caption, theme,
                   height=380)
    fig.update_layout(yaxis2={"title": {"text": ""}})  # the left panel's axis title says it for both
    return fig


def _count_demonstrations(result: "AttentionResult") -> int:
    return len({segment.name for segment in result.segments if segment.name.startswith("demonstration")})


# --- the decoder-only analogue of cross-attention ------------------------------------------------------------
def plot_source_alignment(result: "AttentionResult", layer: int, head: int | None = None, *,
                          theme: Theme = "light") -> go.Figure:
    """Target (translation) tokens × source tokens, cut from one layer of a decoder's self-attention and
    renormalised over the source, drawn like the cross-attention view. head None = mean over heads.

    A row whose sliding window does not reach the source has nothing to renormalise: it is drawn grey."""
    attention = result.self_attention()  # (layer, head, query_pos, key_pos)
    layer = check_index("layer", layer, attention.shape[0], "layers")
    if head is not None:
        head = check_index("head", head, attention.shape[1], "heads")
    weights, rows, inputs = source_alignment(result, layer)       # (head, row, input), rows renormalised
    reaches = weights.sum(axis=-1) > 0                             # (head, row): the source is within reach
    if head is None:
        matrix = weights.mean(axis=0)                              # (row, input)
        blind = ~reaches.any(axis=0)
    else:
        matrix, blind = weights[head], ~reaches[head]
    matrix = np.where(blind[:, None], np.nan, matrix).astype(np.float32)
    tokens, special = result.tokens(), result.special()
    where = f"layer {layer} · " + ("mean over heads" if head is None else f"head {head}")
    note = ("Cut from the decoder's self-attention (this model has no cross-attention): of the attention each "
            "translated token gives your source text, the share on each source token; rows sum to 1.")
    if blind.any():
        note += " Grey rows: this layer's sliding window does not reach the source, so they stay empty."
    return plot_alignment(
        matrix, [tokens[row] for row in rows], [tokens[position] for position in inputs],
        target_special=[special[row] for row in rows], source_special=[special[p] for p in inputs],
        title=f"{result.model_name} · source alignment (decoder-only analogue of cross-attention) · {where}",
        theme=theme, axis_titles=("source token (your text)", "target token (translation)"),
        note=_caption([note]))


__all__ = ["has_answer_focus", "has_segment_shares", "has_source_alignment", "plot_answer_focus",
           "plot_segment_shares", "plot_shot_comparison", "plot_source_alignment", "segment_colors"]
