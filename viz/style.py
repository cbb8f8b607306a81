"""Shared look of every figure: light/dark themes with explicit colours, CJK-capable fonts, colour scale, captions."""

from __future__ import annotations

from typing import Literal

import plotly.graph_objects as go

Theme = Literal["light", "dark"]

# Perceptually uniform and readable by colour-blind users.
COLOR_SCALE = "Viridis"
FONT_FAMILY = ("Inter, 'Noto Sans', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', "
               "'Microsoft YaHei', 'Hiragino Sans GB', Arial, sans-serif")

THEMES: dict[str, dict[str, str]] = {
    # paper: figure background; masked: colour of cells a token cannot see (drawn as gaps over the plot area)
    "light": {"paper": "#ffffff", "font": "#1f2937", "masked": "#d4d4d8", "grid": "#e5e7eb", "muted": "#6b7280"},
    "dark": {"paper": "#0b0f19", "font": "#e5e7eb", "masked": "#3f3f46", "grid": "#374151", "muted": "#9ca3af"},
}

ATTENTION_CAVEAT = ("Attention shows where a head looks, not why the model answered: attention is not an explanation.")
MASKED_NOTE = "grey = masked (this token cannot see that one)"


def theme_colors(theme: Theme) -> dict[str, str]:
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {sorted(THEMES)}, got {theme!r}")
    return THEMES[theme]


def base_layout(fig: go.Figure, title: str, theme: Theme, height: int, caption: str | None = None) -> go.Figure:
    """Apply explicit backgrounds, fonts and an optional caption line under the plot. `title` must be escaped."""
    colors = theme_colors(theme)
    lines = caption.count("<br>") + 1 if caption else 0
    fig.update_layout(
        template=go.layout.Template(),  # no default template: ~10 KB less JSON, our colours only
        title={"text": title, "x": 0.01, "xanchor": "left", "yref": "container", "y": 1, "yanchor": "top",
               "pad": {"t": 12}, "font": {"size": 15}},
        paper_bgcolor=colors["paper"],
        plot_bgcolor=colors["masked"],
        font={"family": FONT_FAMILY, "color": colors["font"], "size": 12},
        height=height + 16 * lines,
        margin={"l": 80, "r": 30, "t": 70 + 16 * lines, "b": 40},
        hoverlabel={"font": {"family": FONT_FAMILY}},
    )
    if caption:
        # under the title, above the panels (a bottom caption would collide with rotated tick labels)
        fig.add_annotation(text=caption, xref="paper", yref="paper", x=0, y=1, yshift=26, xanchor="left",
                           yanchor="bottom", showarrow=False, align="left",
                           font={"size": 11, "color": colors["muted"]})
    return fig


def colorbar(title: str, theme: Theme) -> dict:
    colors = theme_colors(theme)
    return {"title": {"text": title, "side": "right"}, "thickness": 14, "outlinewidth": 0,
            "tickfont": {"color": colors["font"]}}


# A trace's `meta` when its cell texts and hovers are words (role names), not tokens: a translated page may
# translate them (demos/i18n); every other trace's text is left as it is.
WORD_CELLS = "atlas:word-cells"
