"""Lesson views: the figures of the guided lesson (tokenizers side by side, embedding similarity, softmax with a
temperature, how much each sub-layer changes the residual stream), from plain arrays or a LessonData (duck typing).

Every number drawn comes from the model (service/lesson/); these functions only arrange it. Token strings are
escaped here (Plotly tick text and HTML chips alike); everything else is the app's own English, which the
interface language translates on its way out (demos/i18n).
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .labels import axis_keys, plot_labels
from .style import COLOR_SCALE, Theme, base_layout, colorbar, theme_colors

SCHEME_MARKERS = {
    "sentencepiece": "▁ = a word starts here (SentencePiece writes the space as part of the next piece)",
    "wordpiece": "## = this piece continues the word before it",
    "byte-level-bpe": "Ġ = a space before the piece; <e6 9c> = UTF-8 bytes that are only part of a character",
}
TEMPERATURE_RANGE = (0.1, 3.0)
TOP_NEXT_TOKENS = 10        # bars of the next-token distribution
BEFORE_COLOR = "#cbd5e1"    # the distribution at temperature 1, drawn behind
AFTER_COLOR = "#6366f1"     # at the chosen temperature
ATTENTION_COLOR = "#2563eb"
FFN_COLOR = "#16a34a"


def _escape(text: str) -> str:
    return html.escape(str(text), quote=True)


def _axis(tokens: Sequence[str], special: Sequence[bool] | None = None) -> tuple[list[str], list[str]]:
    """(unique category keys, escaped tick texts) for a token axis: equal tokens stay two rows."""
    ticks = plot_labels(list(tokens), special)
    return axis_keys(ticks), ticks


# --- step 1: text → tokens → ids ---------------------------------------------------------------------------
def tokenizations_html(tokenizations: Sequence[Any]) -> str:
    """One block per tokenizer: its name, vocabulary size, how many tokens it made, then the tokens as chips with
    their ids under them. Every string is escaped; token chips carry class atlas-tok (never translated)."""
    blocks = []
    for tokenization in tokenizations:
        chips = []
        for token, token_id, special in zip(tokenization.tokens, tokenization.ids, tokenization.special):
            shade = "#e5e7eb" if special else "#dbeafe"
            chips.append(
                f'<span style="display:inline-flex;flex-direction:column;align-items:center;margin:2px 3px">'
                f'<span class="atlas-tok" style="background:{shade};padding:1px 5px;border:1px solid #94a3b8">'
                f'{_escape(token)}</span>'
                f'<span class="atlas-tok" style="font-size:.75em;color:#64748b">{int(token_id)}</span></span>')
        marker = SCHEME_MARKERS.get(tokenization.scheme, "")
        blocks.append(
            f'<div class="atlas-lesson-tokens" style="margin:.4em 0 .8em 0">'
            f'<div><b>{_escape(tokenization.name)}</b> · <span>{len(tokenization.ids)} tokens</span> · '
            f'<span>vocabulary of {tokenization.vocabulary_size:,} entries</span></div>'
            f'<div style="font-size:.85em;color:#64748b"><span>{_escape(tokenization.source)}</span></div>'
            f'<div style="font-family:var(--font-mono);line-height:1.4">{"".join(chips)}</div>'
            + (f'<div style="font-size:.85em;color:#64748b"><span>{_escape(marker)}</span></div>' if marker else "")
            + "</div>")
    return "".join(blocks)


# --- step 2: embeddings ---------------------------------------------------------------------------------------
def plot_embedding_similarity(tokens: Sequence[str], cosine: np.ndarray, *, special: Sequence[bool] | None = None,
                              model_name: str = "",
                              hidden_size: int | None = None, theme: Theme = "light") -> go.Figure:
    """(T, T) cosine similarity of the vectors that enter layer 0, one row and column per token."""
    cosine = np.asarray(cosine, dtype=np.float32)
    if cosine.shape != (len(tokens), len(tokens)):
        raise ValueError(f"cosine is {cosine.shape} but there are {len(tokens)} tokens")
    keys, ticks = _axis(tokens, special)
    fig = go.Figure(go.Heatmap(
        z=cosine, x=keys, y=keys, zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
        colorbar=colorbar("cosine", theme), hovertemplate="%{y} · %{x}<br>cosine %{z:.3f}<extra></extra>"))
    fig.update_xaxes(type="category", tickvals=keys, ticktext=ticks, tickangle=-45, showgrid=False)
    fig.update_yaxes(type="category", tickvals=keys, ticktext=ticks, autorange="reversed", showgrid=False)
    size = f"{hidden_size} numbers each" if hidden_size else "one vector each"
    title = f"{model_name + ' · ' if model_name else ''}embeddings: how alike the token vectors are ({size})"
    caption = ("1 = the same direction, 0 = unrelated, −1 = opposite. The diagonal is each token with itself. "
               "A token that appears twice has the same vector both times: the table knows no position.")
    return base_layout(fig, _escape(title), theme, 150 + 22 * max(8, len(tokens)), caption=_escape(caption))


def neighbours_html(tokens: Sequence[str], neighbours: Sequence[Sequence[tuple[str, float]]],
                    special: Sequence[bool] | None = None) -> str:
    """A table: each token of the sentence and the vocabulary entries whose vectors are nearest to its own."""
    rows = []
    for index, (token, near) in enumerate(zip(tokens, neighbours)):
        if special is not None and special[index]:
            continue
        cells = " ".join(f'<span class="atlas-tok" style="background:#f1f5f9;padding:0 4px">{_escape(word)}</span>'
                         f'<span style="color:#64748b;font-size:.8em"> {similarity:.2f}</span>'
                         for word, similarity in near)
        rows.append(f'<tr><td><span class="atlas-tok" style="background:#dbeafe;padding:0 4px">{_escape(token)}'
                    f'</span></td><td>{cells}</td></tr>')
    return ('<table class="atlas-lesson-neighbours" style="font-size:.9em"><thead><tr><th>token</th>'
            '<th>nearest entries of the embedding table (cosine)</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


# --- step 4: softmax and temperature --------------------------------------------------------------------------
def softmax_with_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(scores / T) over the last axis; −inf scores (masked) get weight 0. (…, n) → (…, n)."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    scaled = np.asarray(scores, dtype=np.float64) / float(temperature)
    top = np.max(scaled, axis=-1, keepdims=True)
    weights = np.exp(scaled - top)                       # exp(−inf) = 0 for masked keys
    return weights / weights.sum(axis=-1, keepdims=True)


def plot_temperature(scores: np.ndarray, key_tokens: Sequence[str], logits: np.ndarray, top_ids: Sequence[int],
                     top_tokens: Sequence[str], temperature: float, *, query_token: str = "",
                     where: str = "", theme: Theme = "light") -> go.Figure:
    """Left: one real attention row, softmax(scores / T) over the keys it may see. Right: the real next-token
    distribution, softmax(logits / T) over the whole vocabulary, its top TOP_NEXT_TOKENS entries. Grey bars:
    temperature 1 (what the model computes); coloured bars: the chosen temperature.

    scores: (T,) pre-softmax scores of the row (−inf where masked). logits: (V,). top_ids: best first."""
    colors = theme_colors(theme)
    scores = np.asarray(scores, dtype=np.float64)
    visible = np.isfinite(scores)
    if not visible.any():
        raise ValueError("the attention row has no visible key")
    attention_before = softmax_with_temperature(scores, 1.0)[visible]
    attention_after = softmax_with_temperature(scores, temperature)[visible]
    seen_keys, seen_ticks = _axis([token for token, shown in zip(key_tokens, visible) if shown])
    ids = list(top_ids)[:TOP_NEXT_TOKENS]
    next_before = softmax_with_temperature(np.asarray(logits), 1.0)[ids]
    next_after = softmax_with_temperature(np.asarray(logits), temperature)[ids]
    next_keys, next_ticks = _axis(list(top_tokens)[:TOP_NEXT_TOKENS])
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        _escape(f"attention of {query_token!s} ({where})" if where else "one attention row"),
        _escape(f"next token after the sentence (top {len(ids)})")))
    for column, keys, before, after in ((1, seen_keys, attention_before, attention_after),
                                        (2, next_keys, next_before, next_after)):
        fig.add_trace(go.Bar(x=keys, y=before, name="T = 1 (the model)", marker_color=BEFORE_COLOR,
                             showlegend=column == 1, hovertemplate="%{x}<br>T = 1: %{y:.3f}<extra></extra>"),
                      row=1, col=column)
        fig.add_trace(go.Bar(x=keys, y=after, name=f"T = {temperature:g}", marker_color=AFTER_COLOR,
                             showlegend=column == 1,
                             hovertemplate=f"%{{x}}<br>T = {temperature:g}: %{{y:.3f}}<extra></extra>"),
                      row=1, col=column)
    fig.update_xaxes(type="category", tickvals=seen_keys, ticktext=seen_ticks, tickangle=-45, row=1, col=1)
    fig.update_xaxes(type="category", tickvals=next_keys, ticktext=next_ticks, tickangle=-45, row=1, col=2)
    for column, tallest in ((1, max(attention_before.max(), attention_after.max())),
                            (2, max(next_before.max(), next_after.max()))):
        fig.update_yaxes(range=[0, min(1.0, 1.15 * float(tallest))], row=1, col=column)
    fig.update_yaxes(tickformat=".0%", gridcolor=colors["grid"])
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.35, "x": 0})
    caption = (f"softmax(scores / T) · T = {temperature:g}: below 1 it sharpens, above 1 it flattens. The order never "
               "changes, only how far apart the weights are. Each side still sums to 1 (the right side over the "
               "whole vocabulary, so its top bars sum to less).")
    fig = base_layout(fig, _escape(f"Softmax with a temperature T = {temperature:g}"), theme, 430,
                      caption=_escape(caption))
    return fig.update_layout(plot_bgcolor=colors["paper"])   # bars on the page, not on the masked-cell grey


# --- step 6: feed-forward, residual, norm ---------------------------------------------------------------------
def plot_sublayer_changes(attention_change: np.ndarray, ffn_change: np.ndarray, *, model_name: str = "",
                          theme: Theme = "light") -> go.Figure:
    """Per layer, how much the attention and the feed-forward sub-layer change the residual stream: the size of
    what each adds, relative to the stream it reads (mean over the sentence's tokens). (layer,) each."""
    colors = theme_colors(theme)
    attention_change = np.asarray(attention_change, dtype=np.float64)
    ffn_change = np.asarray(ffn_change, dtype=np.float64)
    if attention_change.shape != ffn_change.shape:
        raise ValueError(f"{attention_change.shape[0]} attention changes but {ffn_change.shape[0]} feed-forward ones")
    layers = [str(layer) for layer in range(attention_change.shape[0])]
    fig = go.Figure([
        go.Bar(x=layers, y=attention_change, name="attention: ‖added‖ / ‖stream‖", marker_color=ATTENTION_COLOR,
               hovertemplate="layer %{x}<br>attention adds %{y:.0%} of the stream's size<extra></extra>"),
        go.Bar(x=layers, y=ffn_change, name="feed-forward: ‖added‖ / ‖stream‖", marker_color=FFN_COLOR,
               hovertemplate="layer %{x}<br>feed-forward adds %{y:.0%} of the stream's size<extra></extra>"),
    ])
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.25, "x": 0})
    fig.update_xaxes(title={"text": "layer"}, type="category")
    # log scale: the first layers can change the stream by several times its size, later ones by a few percent
    fig.update_yaxes(title={"text": "relative change (log scale)"}, type="log", tickformat=".0%",
                     gridcolor=colors["grid"])
    caption = ("Each layer: h ← h + Attention(Norm(h)), then h ← h + FFN(Norm(h)). A bar is the size of what the "
               "sub-layer adds, divided by the size of h before it (mean over your tokens).")
    title = f"{model_name + ' · ' if model_name else ''}how much each sub-layer changes the residual stream"
    fig = base_layout(fig, _escape(title), theme, 380, caption=_escape(caption))
    return fig.update_layout(plot_bgcolor=colors["paper"])


# --- step 7: who sees whom ---------------------------------------------------------------------------------------
def visibility_summary(attention: np.ndarray) -> dict[str, float]:
    """How much of a model's attention (layer, head, T, T) goes to later tokens: the share above the diagonal,
    and the weight the first token gives the last one (mean over layers and heads)."""
    attention = np.asarray(attention, dtype=np.float64)
    count = attention.shape[-1]
    upper = np.triu(np.ones((count, count), dtype=bool), k=1)      # (query, key): key after query
    per_row = (attention * upper).sum(-1)                           # (layer, head, query)
    return {"later_share": float(per_row.mean()), "first_to_last": float(attention[..., 0, -1].mean())}


__all__ = ["neighbours_html", "plot_embedding_similarity", "plot_sublayer_changes", "plot_temperature",
           "softmax_with_temperature", "tokenizations_html", "visibility_summary", "COLOR_SCALE"]
