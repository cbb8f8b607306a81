"""The logit lens as a figure: a layer × position grid of the token the model would predict after each layer.

Input is a LogitLens (service/probes/logit_lens.py) or anything with its fields: `tokens` (the input token at each
position start..end-1), `start`, `layers[layer][position][rank] = {"token", "p"}` and `max_diff_vs_model`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from .labels import display_token, escape_text, plot_labels, shorten, wrap_lines
from .style import COLOR_SCALE, Theme, base_layout, colorbar

MATCH_TOLERANCE = 1e-4   # as the Explain tab: the last layer must equal the model's own output this closely
LENS_MEANING = ("Each cell: the token the model would predict next if it stopped after that layer (its own final "
                "norm and unembedding applied to the layer's output); colour = that token's probability. Hover for "
                "the top candidates. The column is the input token at that position; the cell predicts the one after.")


def check_line(max_diff: float) -> str:
    """'Last layer vs the model's own output: max difference 3.0e-08 ✓' (✗ at or above 1e-4)."""
    mark = "✓" if max_diff < MATCH_TOLERANCE else f"✗ (≥ {MATCH_TOLERANCE:g}: do not trust this lens)"
    shown = "0.0" if max_diff == 0 else f"{max_diff:.1e}"
    return f"Last layer vs the model's own output: max difference {shown} {mark}"


def plot_logit_lens(lens: Any, *, title: str = "Logit lens", theme: Theme = "light") -> go.Figure:
    """Layer × position heatmap of the lens's top-1 probability, the top token written in each cell, the top-k on
    hover, and the check line of the last layer against the model's output under the title."""
    layers = lens.layers  # [layer][position][rank] {"token", "p"}
    num_layers, positions = len(layers), len(lens.tokens)
    if num_layers == 0 or any(len(row) != positions for row in layers):
        raise ValueError(f"the lens has {positions} tokens but its layers cover "
                         f"{sorted({len(row) for row in layers})} positions")
    z = np.array([[ranked[0]["p"] for ranked in row] for row in layers], dtype=np.float32)  # (layer, position)
    width = 10 if positions <= 24 else 6 if positions <= 40 else 4
    text = [[escape_text(shorten(display_token(ranked[0]["token"]), width)) for ranked in row] for row in layers]
    x_labels = plot_labels(lens.tokens, max_chars=10)
    x_keys = [f"#{lens.start + index} {label}" for index, label in enumerate(x_labels)]
    y_keys = [f"layer {index}" for index in range(num_layers)]
    hover = [[f"{y_keys[layer]} · {escape_text(x_keys[position])}<br>"
              + "<br>".join(f"{rank + 1}. “{escape_text(shorten(display_token(c['token']), 20))}” {c['p']:.3f}"
                            for rank, c in enumerate(layers[layer][position]))
              for position in range(positions)] for layer in range(num_layers)]
    fig = go.Figure(go.Heatmap(
        z=z, x=x_keys, y=y_keys, text=text, texttemplate="%{text}", hovertext=hover, hoverinfo="text",
        coloraxis="coloraxis", xgap=1, ygap=1, textfont={"size": 11 if positions <= 24 else 9}))
    fig.update_layout(coloraxis={"colorscale": COLOR_SCALE, "cmin": 0.0, "cmax": 1.0,
                                 "colorbar": colorbar("probability of the top token", theme)})
    fig.update_xaxes(type="category", tickangle=-60, showgrid=False, tickfont={"size": 10 if positions <= 32 else 8},
                     title={"text": "input position (the cell predicts the next token)"})
    fig.update_yaxes(type="category", showgrid=False, title={"text": "after layer"})  # layer 0 at the bottom
    caption = escape_text(check_line(lens.max_diff_vs_model)) + "<br>" + escape_text(LENS_MEANING)
    caption = "<br>".join(line for part in caption.split("<br>") for line in wrap_lines(part, 130))
    heading = f"{title} · positions {lens.start}–{lens.start + positions - 1}"
    fig = base_layout(fig, escape_text(heading), theme, 160 + max(260, 26 * num_layers), caption=caption)
    # rotated position labels need room below the grid, or the axis title sits on them and they are cut off
    fig.update_layout(margin={"b": 130})
    fig.update_xaxes(automargin=True, title={"standoff": 12})
    return fig
