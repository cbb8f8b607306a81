"""Generation step by step: the next-token candidates of one step and what the predicting position attended to.

A generation result records, per generated token, the top-k candidates the model weighed (service/tasks/steps.py):
`result.generation_steps[i] = {"token", "p", "rank", "candidates": [{"token", "p"}], "sampling_candidates", ...}`.
Step i's token sits at position `len(decoder_tokens) - len(steps) + i`; it was predicted by the position just
before it, whose attention row is what the model read when it made that choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

from ._common import block_axis, category_axis, check_index, tick_font_size
from .html_view import HTMLView
from .labels import display_token, escape_text, plot_labels, shorten, wrap_lines
from .style import ATTENTION_CAVEAT, COLOR_SCALE, Theme, base_layout, colorbar, theme_colors
from .token_strip import render_token_strip

if TYPE_CHECKING:
    from service.result import AttentionResult

CHOSEN_COLOR = "#f97316"     # the token that was chosen (the token strip's outline colour)
RAW_COLOR = "#6366f1"        # raw softmax (temperature 1)
SAMPLED_COLOR = "#14b8a6"    # after temperature / top-k / top-p
RANK_NOTE = "rank 0 = the model's first choice"


def step_count(result: "AttentionResult") -> int:
    """How many generated tokens have recorded steps (0 when none were recorded)."""
    return len(result.generation_steps or [])


def has_steps(result: "AttentionResult") -> bool:
    """A generation result whose steps (candidates) were recorded while it ran."""
    return result.task == "generation" and result.decoder_tokens is not None and step_count(result) > 0


def step_position(result: "AttentionResult", step: int) -> int:
    """The position of step `step`'s token in `result.decoder_tokens` (negative when the kept window cut it off)."""
    steps = step_count(result)
    check_index("step", step, steps, "generated tokens")
    return len(result.tokens("decoder")) - steps + step


def _step(result: "AttentionResult", step: int) -> dict[str, Any]:
    check_index("step", step, step_count(result), "generated tokens")
    return result.generation_steps[step]  # type: ignore[index]


def step_headline(result: "AttentionResult", step: int) -> str:
    """'Step 3 of 12: “ day” · rank 0 (rank 0 = the model's first choice) · p = 0.412' (plain text)."""
    record = _step(result, step)
    line = (f"Step {step + 1} of {step_count(result)}: “{display_token(record['token'])}” · rank {record['rank']} "
            f"({RANK_NOTE}) · p = {record['p']:.3f}")
    if "p_sampling" in record:
        line += f" (after temperature / top-k / top-p: {record['p_sampling']:.3f})"
    return line


def plot_step_candidates(result: "AttentionResult", step: int, *, theme: Theme = "light") -> go.Figure:
    """Bars of step `step`'s top-k next-token candidates: raw probabilities (temperature 1), and beside them, when
    the run sampled, the distribution sampling drew from. The chosen token is orange; when it lies outside the top k
    it gets a bar of its own at the bottom, labelled with its rank."""
    record = _step(result, step)
    panels = [("raw probabilities (softmax, temperature 1)", record["candidates"], RAW_COLOR, record["p"])]
    if record.get("sampling_candidates"):
        panels.append(("after temperature / top-k / top-p (what was sampled from)", record["sampling_candidates"],
                       SAMPLED_COLOR, record.get("p_sampling", 0.0)))
    chosen = record["token"]
    gap = 0.08
    width = (1 - gap * (len(panels) - 1)) / len(panels)
    traces, layout, titles = [], {}, []
    rows = 0
    for index, (name, candidates, color, chosen_p) in enumerate(panels):
        suffix = "" if index == 0 else str(index + 1)
        tokens = [candidate["token"] for candidate in candidates]
        probs = [float(candidate["p"]) for candidate in candidates]
        ranks = [str(rank) for rank in range(len(tokens))]
        if chosen not in tokens:  # sampled from outside the top k shown: still show where it stood
            tokens.append(chosen)
            probs.append(float(chosen_p))
            ranks.append(str(record["rank"]) if index == 0 else "…")
        labels = [f"{rank}. {label}" for rank, label in zip(ranks, plot_labels(tokens, max_chars=14))]
        colors = [CHOSEN_COLOR if token == chosen else color for token in tokens]
        rows = max(rows, len(labels))
        left = index * (width + gap)
        traces.append(go.Bar(
            x=probs, y=labels, orientation="h", marker={"color": colors}, xaxis=f"x{suffix}", yaxis=f"y{suffix}",
            text=[f"{p:.3f}" for p in probs], textposition="outside", cliponaxis=False, showlegend=False,
            hovertemplate="%{y}<br>p = %{x:.4f}<extra>" + escape_text(name) + "</extra>"))
        top = max(probs) if probs else 1.0
        layout[f"xaxis{suffix}"] = {"domain": [left, left + width], "anchor": f"y{suffix}", "range": [0, top * 1.25],
                                    "title": {"text": "probability"}, "gridcolor": theme_colors(theme)["grid"],
                                    "zeroline": False}
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "type": "category", "autorange": "reversed",
                                    "automargin": True, "tickfont": {"size": 12}}
        titles.append({"text": escape_text(name), "x": left, "y": 1.0, "xref": "paper", "yref": "paper",
                       "xanchor": "left", "yanchor": "bottom", "showarrow": False, "font": {"size": 12}})
    fig = go.Figure(data=traces, layout={**layout, "annotations": titles, "bargap": 0.25})
    sampled = len(panels) > 1
    notes = [f"Orange = the token chosen at this step ({RANK_NOTE}). Probabilities come from the model's raw "
             "next-token logits (softmax at temperature 1), recorded while it generated."]
    notes.append("The run sampled: the right panel is the distribution after temperature, top-k and top-p, which "
                 "the token was drawn from." if sampled else
                 "Greedy decoding (temperature 0) always takes rank 0.")
    caption = "<br>".join(escape_text(line) for note in notes for line in wrap_lines(note, 130))
    fig = base_layout(fig, escape_text(step_headline(result, step)), theme, 90 + 28 * rows, caption=caption)
    fig.update_layout(plot_bgcolor=theme_colors(theme)["paper"], margin={"t": fig.layout.margin.t + 18})
    return fig


def _predicting_row(result: "AttentionResult", step: int, head: int | None) -> tuple[np.ndarray, int]:
    """(layer, key_pos) attention of the position that predicted step `step`'s token, and that position."""
    position = step_position(result, step) - 1
    if position < 0:
        raise ValueError(f"step {step + 1} was predicted at a position the kept attention window no longer holds: "
                         f"only the last {len(result.tokens('decoder'))} positions are kept")
    attention = result.self_attention("decoder")  # (layer, head, query_pos, key_pos)
    if head is None:
        rows = attention[:, :, position, : position + 1].mean(axis=1)  # (layer, key_pos)
    else:
        head = check_index("head", head, attention.shape[1], "heads")
        rows = attention[:, head, position, : position + 1]            # (layer, key_pos)
    return np.asarray(rows, dtype=np.float32), position


def step_strip_html(result: "AttentionResult", step: int, layer: int, head: int | None = None, *,
                    theme: Theme = "light") -> HTMLView:
    """The text so far shaded by what the predicting position attended to (layer `layer`, head `head` or the mean
    over heads); the token being chosen comes last, dashed (it cannot be seen yet)."""
    rows, position = _predicting_row(result, step, head)
    layer = check_index("layer", layer, rows.shape[0], "layers")
    tokens = result.tokens("decoder")[: position + 2]
    special = result.special("decoder")[: position + 2]
    weights = np.append(rows[layer], 0.0)                                   # (position + 2,)
    visible = [True] * (position + 1) + [False]
    which = f"layer {layer}, " + ("mean over heads" if head is None else f"head {head}")
    reading = display_token(tokens[position], special[position])
    choosing = display_token(tokens[position + 1], special[position + 1])
    caption = (f"{step_headline(result, step)}. To choose “{choosing}” the model read from “{reading}” "
               f"(#{position}, the last token it had): shaded is what that position attended to ({which}); "
               "dashed = the token being chosen.")
    return render_token_strip(weights, tokens, focus=position, special=special, visible=visible, caption=caption,
                              theme=theme)


def plot_step_attention_by_layer(result: "AttentionResult", step: int, head: int | None = None,
                                 layer: int | None = None, *, theme: Theme = "light") -> go.Figure:
    """Layer × key heatmap: row ℓ = what the position that predicted step `step` attended to in layer ℓ (head
    `head`, or the mean over heads). The chosen `layer` is outlined."""
    rows, position = _predicting_row(result, step, head)  # (layer, key_pos)
    num_layers, keys = rows.shape
    labels = plot_labels(result.tokens("decoder")[:keys], result.special("decoder")[:keys])
    x_keys, x_vals, x_text = block_axis(labels, np.arange(keys + 1), 48)
    y_keys = [f"layer {index}" for index in range(num_layers)]
    fig = go.Figure(go.Heatmap(
        z=rows, x=x_keys, y=y_keys, coloraxis="coloraxis",
        hovertemplate="%{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"))
    top = float(rows.max()) if rows.size and rows.max() > 0 else 1.0
    fig.update_layout(coloraxis={"colorscale": COLOR_SCALE, "cmin": 0.0, "cmax": top,
                                 "colorbar": colorbar("attention weight", theme)},
                      xaxis={**category_axis(x_keys, x_vals, x_text, tick_font_size(len(x_vals))), "tickangle": -60,
                             "title": {"text": "key token (looked at)"}},
                      yaxis={"type": "category", "autorange": "reversed", "showgrid": False,
                             "tickfont": {"size": tick_font_size(num_layers)}})
    if layer is not None:
        layer = check_index("layer", layer, num_layers, "layers")
        fig.add_shape(type="rect", xref="paper", yref="y", x0=0, x1=1, y0=layer - 0.5, y1=layer + 0.5,
                      line={"color": CHOSEN_COLOR, "width": 2})
    reading = display_token(result.tokens("decoder")[position], result.special("decoder")[position])
    which = "mean over heads" if head is None else f"head {head}"
    title = (f"Step {step + 1}: what “{shorten(reading, 20)}” (#{position}) attended to, layer by layer ({which})")
    caption = escape_text("Each row is one layer: the attention of the position that predicted this step's "
                          "token. Orange outline = the layer the token strip shows.") + "<br>" + ATTENTION_CAVEAT
    return base_layout(fig, escape_text(title), theme, 140 + max(220, 22 * num_layers), caption=caption)
