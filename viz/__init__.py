"""Attention Atlas views: Plotly figures and HTML from an AttentionResult (or plain arrays + tokens).

Never imports torch or transformers at import time (only viz.bertviz_view does, lazily, inside its functions).
"""

from .cross_view import plot_alignment, plot_cross_attention
from .layer_view import plot_attention_heads, plot_head, plot_layer_heads
from .overview import plot_attention_overview, plot_model_overview

__all__ = [
    "plot_alignment", "plot_attention_heads", "plot_attention_overview", "plot_cross_attention", "plot_head",
    "plot_layer_heads", "plot_model_overview",
]
