"""Attention Atlas views: Plotly figures and HTML from an AttentionResult (or plain arrays + tokens).

Never imports torch or transformers at import time (only viz.bertviz_view does, lazily, inside its functions).
"""

from .layer_view import plot_attention_heads, plot_head, plot_layer_heads

__all__ = ["plot_attention_heads", "plot_head", "plot_layer_heads"]
