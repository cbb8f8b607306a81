"""Attention Atlas views: Plotly figures and HTML from an AttentionResult (or plain arrays + tokens).

Never imports torch or transformers at import time (only viz.bertviz_view does, lazily, inside its functions).
Figures display themselves in a notebook; HTML views are HTMLView strings that do too.
"""

from .bertviz_view import MAX_BERTVIZ_VALUES, bertviz_head_view_html, bertviz_model_view_html
from .cross_view import plot_alignment, plot_cross_attention
from .head_stats import (STATISTICS, attention_entropy, attention_rollout, first_token_share, head_statistic,
                         mean_attention_distance, plot_head_summary, plot_rollout, plot_statistic_map,
                         previous_token_score)
from .html_view import HTMLView
from .labels import display_token, display_tokens
from .layer_view import plot_attention_heads, plot_head, plot_layer_heads
from .overview import plot_attention_overview, plot_model_overview
from .style import ATTENTION_CAVEAT
from .token_strip import render_token_strip, token_strip_html
from .zoom import plot_zoom

__all__ = [
    "ATTENTION_CAVEAT", "HTMLView", "MAX_BERTVIZ_VALUES", "STATISTICS", "attention_entropy", "attention_rollout",
    "bertviz_head_view_html", "bertviz_model_view_html", "display_token", "display_tokens", "first_token_share",
    "head_statistic", "mean_attention_distance", "plot_alignment", "plot_attention_heads", "plot_attention_overview",
    "plot_cross_attention", "plot_head", "plot_head_summary", "plot_layer_heads", "plot_model_overview",
    "plot_rollout", "plot_statistic_map", "previous_token_score", "render_token_strip", "token_strip_html", "plot_zoom",
]
