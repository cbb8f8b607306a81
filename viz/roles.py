"""Head roles as a figure: a layer × head map of each head's role on the induction probe, with its scores on hover.

Input: a list of head roles (service/probes/head_roles.py HeadRole, or anything with `layer`, `head`, `role` and
`scores` {previous_token, first_token, local, induction, broad}).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from .labels import escape_text, wrap_lines
from .style import WORD_CELLS, Theme, base_layout

# Okabe–Ito colours (readable by colour-blind users), one per role; "mixed" = no score cleared its threshold.
ROLE_COLORS = {
    "induction": "#D55E00",
    "previous-token": "#0072B2",
    "first-token sink": "#F0E442",
    "local": "#009E73",
    "broad": "#56B4E9",
    "mixed": "#d4d4d8",
}
ROLE_SHORT = {"induction": "induction", "previous-token": "previous", "first-token sink": "sink", "local": "local",
              "broad": "broad", "mixed": "mixed"}
SCORE_LABELS = {"previous_token": "previous-token", "first_token": "first token", "local": "last 4 tokens",
                "induction": "induction", "broad": "spread (entropy share)"}
PROBE_SENTENCE = ("Roles come from a probe: a random sequence of 24 tokens, repeated twice. An induction head looks, "
                  "from the second copy, at the token that followed the same token in the first copy; a "
                  "previous-token head looks one token back; a sink head parks its attention on the first token.")
SELECTED_COLOR = "#f97316"


def role_grid(roles: Sequence[Any]) -> list[list[Any]]:
    """The roles arranged [layer][head]; every (layer, head) must appear exactly once."""
    layers = 1 + max(role.layer for role in roles)
    heads = 1 + max(role.head for role in roles)
    grid: list[list[Any]] = [[None] * heads for _ in range(layers)]
    for role in roles:
        if grid[role.layer][role.head] is not None:
            raise ValueError(f"layer {role.layer} head {role.head} has two roles")
        grid[role.layer][role.head] = role
    missing = [(layer, head) for layer in range(layers) for head in range(heads) if grid[layer][head] is None]
    if missing:
        raise ValueError(f"{len(missing)} heads have no role, e.g. layer {missing[0][0]} head {missing[0][1]}")
    return grid


def role_hover(role: Any) -> str:
    """'layer 3 · head 1: induction' and one line per score (escaped, for Plotly hover)."""
    lines = [f"layer {role.layer} · head {role.head}: {role.role}"]
    lines += [f"{SCORE_LABELS.get(name, name)}: {value:.2f}" for name, value in role.scores.items()]
    return escape_text("\n".join(lines)).replace("\n", "<br>")


def plot_head_roles(roles: Sequence[Any], *, selected: tuple[int, int] | None = None, model_name: str = "",
                    theme: Theme = "light", slider_hint: bool = True) -> go.Figure:
    """Layer × head map of roles: one colour per role (legend above), the role written in each cell, the scores on
    hover; `selected` (layer, head) is outlined. slider_hint: say how the attention panel's sliders pick a head
    (off where there are none, as in the Lesson tab)."""
    grid = role_grid(roles)
    names = list(ROLE_COLORS)
    num_layers, num_heads = len(grid), len(grid[0])
    z = np.array([[names.index(role.role) if role.role in ROLE_COLORS else names.index("mixed") for role in row]
                  for row in grid], dtype=np.float32)  # (layer, head): index of the role
    # a stepped colour scale: value i (of n roles) gets exactly ROLE_COLORS[i]
    count = len(names)
    scale = []
    for index, name in enumerate(names):
        scale += [[index / count, ROLE_COLORS[name]], [(index + 1) / count, ROLE_COLORS[name]]]
    fig = go.Figure(go.Heatmap(
        z=z, zmin=-0.5, zmax=count - 0.5, colorscale=scale, showscale=False, xgap=2, ygap=2,
        x=[f"head {head}" for head in range(num_heads)], y=[f"layer {layer}" for layer in range(num_layers)],
        text=[[ROLE_SHORT.get(role.role, role.role) for role in row] for row in grid], texttemplate="%{text}",
        textfont={"size": 11},  # no fixed colour: Plotly picks black or white per cell for contrast
        hovertext=[[role_hover(role) for role in row] for row in grid], hoverinfo="text", meta=WORD_CELLS))
    fig.update_xaxes(type="category", side="top", showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    if selected is not None:
        layer, head = selected
        if 0 <= layer < num_layers and 0 <= head < num_heads:
            fig.add_shape(type="rect", x0=head - 0.5, x1=head + 0.5, y0=layer - 0.5, y1=layer + 0.5,
                          line={"color": SELECTED_COLOR, "width": 4})
    present = [name for name in names if name in {role.role for role in roles}]
    legend = "  ".join(f'<span style="color:{ROLE_COLORS[name]}">■</span> {escape_text(name)}' for name in present)
    counts = {name: sum(role.role == name for role in roles) for name in present}
    summary = ", ".join(f"{counts[name]} {name}" for name in present)
    sentence = "<br>".join(escape_text(line) for line in wrap_lines(PROBE_SENTENCE, 130))
    note = ("Pick a head with the Layer and Head sliders (outlined), then “Open this head's heatmap” to see what it "
            "does on your text.")
    caption = f"{legend}<br>{sentence}" + (f"<br>{escape_text(note)}" if slider_hint else "")
    title = f"{model_name + ' · ' if model_name else ''}head roles ({summary})"
    return base_layout(fig, escape_text(title), theme, 120 + max(200, 30 * num_layers), caption=caption)


def short_role_grid(roles: Sequence[Any]) -> list[list[str]]:
    """[layer][head] short role names ("induction", "previous", "sink", ...) for cell text elsewhere."""
    return [[ROLE_SHORT.get(role.role, role.role) for role in row] for row in role_grid(roles)]
