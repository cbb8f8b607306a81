"""Explain views: self-attention step by step (prose, LaTeX formula, compact Plotly figure) and the architecture card.

Works from an ExplainResult (service/explain/) by duck typing and from the card dict of `architecture_card`,
so this module never imports torch or transformers. What differs between model families (norms, positions, the
embedding formula) comes as plain data in `result.facts` and the card: nothing here asks which family it is.
Long vectors are cut to MAX_DIMS dimensions and every figure that cuts says so in its title. Token labels are
escaped (Plotly renders tick text as HTML-ish markup); the card and diagram HTML escape every string that comes from
the model or its config.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .labels import axis_keys, display_token, plot_labels, shorten, wrap_lines
from .style import COLOR_SCALE, Theme, base_layout, theme_colors

MAX_DIMS = 32          # dimensions shown of any vector (the rest is truncated, and labelled so)
FIGURE_HEIGHT = 330


@dataclass(frozen=True)
class ExplainStep:
    """One step of the walk-through: a title, one sentence of prose, a LaTeX formula and a Plotly figure."""

    number: int
    title: str
    prose: str        # Markdown, no LaTeX
    formula: str      # LaTeX for display math ($$ … $$ added by `markdown`)
    figure: go.Figure

    def markdown(self) -> str:
        """Markdown for gr.Markdown with latex_delimiters [{"left": "$$", "right": "$$", "display": True}]."""
        return f"### {self.number}. {self.title}\n\n{self.prose}\n\n$$\n{self.formula}\n$$"


# ------------------------------------------------------------------------------------------- helpers
def _cut(matrix: np.ndarray) -> tuple[np.ndarray, str]:
    """First MAX_DIMS columns of (…, dims) and a title suffix saying whether it was truncated."""
    dims = matrix.shape[-1]
    if dims <= MAX_DIMS:
        return matrix, f"all {dims} dims"
    return matrix[..., :MAX_DIMS], f"first {MAX_DIMS} of {dims} dims — truncated"


def _token_keys(result: Any) -> list[str]:
    return axis_keys(plot_labels(result.tokens, getattr(result, "special", None)))


def _heatmap(matrix: np.ndarray, y: list[str], name: str, colorscale: str = "RdBu", show_scale: bool = False,
             zmid: float | None = 0.0) -> go.Heatmap:
    values, _ = _cut(np.asarray(matrix, dtype=np.float32))
    return go.Heatmap(
        z=values.astype(np.float32), y=y, x=list(range(values.shape[-1])), colorscale=colorscale, zmid=zmid,
        showscale=show_scale, name=name,
        hovertemplate="%{y}<br>dim %{x}<br>%{z:.4f}<extra>" + html.escape(name, quote=False) + "</extra>",
    )


def _finish(fig: go.Figure, title: str, theme: Theme, height: int, tokens_down: bool) -> go.Figure:
    """Shared layout; `tokens_down` puts token 0 at the top of token-row heatmaps."""
    base_layout(fig, html.escape(title, quote=False), theme, height)
    fig.update_layout(plot_bgcolor=theme_colors(theme)["paper"], margin={"l": 110, "r": 20, "t": 70, "b": 40})
    if tokens_down:
        fig.update_yaxes(autorange="reversed", tickfont={"size": 10})
    return fig


def _fmt(value: float) -> str:
    return f"{value:.2e}" if value and abs(value) < 1e-3 else f"{value:.4g}"


# ------------------------------------------------------------------------------------------- the steps
def embedding_step(result: Any, theme: Theme = "light") -> ExplainStep:
    """Step 1: tokens → ids → embedding rows (× scale) → the residual stream entering the layer → normalised X."""
    keys = _token_keys(result)
    _, cut = _cut(result.token_embeddings)
    titles = ["embedding rows E[id]", f"entering layer {result.layer}", "X (what attention reads)"]
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, subplot_titles=titles, horizontal_spacing=0.03)
    fig.add_trace(_heatmap(result.token_embeddings, keys, "E[id]"), 1, 1)
    fig.add_trace(_heatmap(result.layer_input, keys, f"h({result.layer})"), 1, 2)
    fig.add_trace(_heatmap(result.attention_input, keys, "X", show_scale=True), 1, 3)
    ids = ", ".join(str(i) for i in result.token_ids[:12]) + (" …" if len(result.token_ids) > 12 else "")
    _finish(fig, f"Tokens → ids [{ids}] → vectors ({cut})", theme, FIGURE_HEIGHT, True)

    formula, prose = _embedding_words(result)
    return ExplainStep(1, "Tokens → ids → embeddings → the layer's input", prose, formula, fig)


def _norm_of(facts: dict[str, Any], argument: str) -> str:
    return r"\mathrm{%s}(%s)" % (facts["norm_name"], argument)


def _embedding_words(result: Any) -> tuple[str, str]:
    """Step 1's formula and prose from the family's facts: scale, added position/segment vectors, norm placement."""
    facts = result.facts
    name, layer, hidden = facts["name"], result.layer, result.hidden_size
    row = r"E[\mathrm{id}_i]"
    scaled = result.embedding_scale is not None
    if scaled:
        row += r"\cdot\sqrt{D}"
    added = []
    if facts["positional"] in ("learned", "sinusoidal"):
        added.append("P_i")
    if facts.get("segment_embeddings"):
        added.append("S_0")
    embedding = " + ".join([row, *added])
    if facts.get("embedding_norm"):
        embedding = _norm_of(facts, embedding)
    formula = r"x_i = " + embedding
    if scaled:
        formula += r" \;(\sqrt{%d}\approx %.2f)" % (hidden, result.embedding_scale)
    prose = f"Each of the {len(result.tokens)} token ids picks a row of the embedding table"
    if scaled:
        prose += f" and {name} multiplies it by √{hidden}"
    if added:
        kind = "fixed sinusoidal" if facts["positional"] == "sinusoidal" else "learned"
        vectors = f"a {kind} position vector" + (" and a segment vector" if facts.get("segment_embeddings") else "")
        prose += f"; {name} adds {vectors}"
        if facts.get("embedding_norm"):
            prose += f" and applies {facts['norm_name']}"
    if facts["norm_placement"] == "post-norm":
        formula += r",\quad X = h^{(%d)}" % layer
        prose += (f"; layer {layer} reads the stream as it is, because this post-norm model already normalised it "
                  "at the end of the previous sublayer.")
    else:
        formula += r",\quad X = %s = %s" % (_norm_of(facts, "h^{(%d)}" % layer), facts["norm_formula"])
        prose += (f"; layer {layer} normalises the residual stream with {facts['norm_name']} before attention "
                  "(pre-norm).")
    return formula, prose


def qkv_step(result: Any, theme: Theme = "light") -> ExplainStep:
    """Step 2: Q, K and V of the chosen head (after q/k norm and RoPE where the model has them)."""
    keys = _token_keys(result)
    _, cut = _cut(result.query)
    rope = bool(result.uses_rope)
    cols = 4 if rope else 3
    titles = [f"Q (head {result.head})", f"K (kv head {result.kv_head})", f"V (kv head {result.kv_head})"]
    if rope:
        titles.append(f"q of token {result.position}: before / after RoPE")
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles, horizontal_spacing=0.04,
                        shared_yaxes=False)
    fig.add_trace(_heatmap(result.query, keys, "Q"), 1, 1)
    fig.add_trace(_heatmap(result.key, keys, "K"), 1, 2)
    fig.add_trace(_heatmap(result.value, keys, "V", show_scale=not rope), 1, 3)
    for col in (2, 3):
        fig.update_yaxes(showticklabels=False, row=1, col=col)
    if rope:
        before, _ = _cut(result.query_normed[result.position])
        after, _ = _cut(result.query[result.position])
        dims = list(range(len(before)))
        fig.add_trace(go.Scatter(x=dims, y=before.astype(np.float32), name="after q-norm", mode="lines+markers",
                                 marker={"size": 4}), 1, 4)
        fig.add_trace(go.Scatter(x=dims, y=after.astype(np.float32), name="after RoPE", mode="lines+markers",
                                 marker={"size": 4}), 1, 4)
    T, d, D = len(result.tokens), result.head_dim, result.hidden_size
    _finish(fig, f"Q, K, V of head {result.head}: ({T}×{D})·({D}×{d}) → ({T}×{d}) ({cut})", theme, FIGURE_HEIGHT, True)
    if rope:
        fig.update_yaxes(autorange=True, row=1, col=4)
    fig.update_layout(showlegend=rope, legend={"orientation": "h", "y": -0.15})

    group = result.num_heads // result.num_key_value_heads
    formula = (r"Q = X W_Q^{(%d)},\; K = X W_K^{(%d)},\; V = X W_V^{(%d)}\quad "
               r"X\in\mathbb{R}^{%d\times %d},\; W\in\mathbb{R}^{%d\times %d}" % (result.head, result.kv_head,
                                                                                 result.kv_head, T, D, D, d))
    prose = f"Head {result.head} projects X to queries, keys and values of {d} numbers per token"
    if group > 1:
        prose += (f"; with grouped-query attention {group} query heads share one key/value head, so head "
                  f"{result.head} uses key/value head {result.kv_head} = ⌊{result.head}/{group}⌋")
    facts = result.facts
    qk_norm = bool(result.uses_qk_norm)
    if rope or qk_norm:
        query, key = ("q_i", "k_j") if not qk_norm else (_norm_of(facts, "q_i"), _norm_of(facts, "k_j"))
        rotate_query, rotate_key = (r"R_{\Theta,i}\," if rope else "", r"R_{\Theta,j}\," if rope else "")
        formula += r",\quad q \leftarrow %s%s,\;k \leftarrow %s%s" % (rotate_query, query, rotate_key, key)
        steps = (["normalises each q and k (q/k norm)"] if qk_norm else []) + (
            ["rotates them by their position (RoPE), so q·k depends on the distance between the tokens"]
            if rope else [])
        prose += f"; {facts['name']} then " + " and ".join(steps)
    if facts.get("fused_qkv"):
        prose += f"; {facts['name']} computes Q, K and V in one fused matrix and splits it"
    return ExplainStep(2, "Queries, keys and values of one head", prose + ".", formula, fig)


def scores_step(result: Any, theme: Theme = "light") -> ExplainStep:
    """Step 3: scores q·Kᵀ × scale, the mask, the softmax → the attention row."""
    keys = _token_keys(result)
    colors = theme_colors(theme)
    mask = np.asarray(result.mask, dtype=bool)
    shown_scores = np.where(mask, result.scores_raw, np.nan).astype(np.float32)
    masked_scores = np.where(mask, np.nan, result.scores_raw).astype(np.float32)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=["scores q·k × scale (grey = masked, becomes −∞)", "softmax → attention row"])
    fig.add_trace(go.Bar(x=keys, y=shown_scores, name="score", marker={"color": "#2563eb"},
                         hovertemplate="key %{x}<br>score %{y:.4f}<extra></extra>"), 1, 1)
    if not mask.all():
        fig.add_trace(go.Bar(x=keys, y=masked_scores, name="masked", marker={"color": colors["masked"]},
                             hovertemplate="key %{x}<br>masked (score %{y:.4f})<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=keys, y=np.asarray(result.recomputed, dtype=np.float32), name="attention",
                         marker={"color": "#16a34a"},
                         hovertemplate="key %{x}<br>weight %{y:.4f}<extra></extra>"), 2, 1)
    # shown, not escaped: _finish escapes the whole title once
    query = shorten(display_token(result.tokens[result.position], bool(result.special[result.position])))
    _finish(fig, f"Query token {result.position} “{query}” against every key", theme, FIGURE_HEIGHT + 40, False)
    fig.update_layout(showlegend=False, barmode="overlay")
    fig.update_xaxes(tickangle=-45, tickfont={"size": 10})

    if result.layer_type == "bidirectional":
        mask_tex = r"\text{no mask: every token sees every token}"
        prose_mask = "this encoder masks nothing, so the token also looks at later tokens"
    elif result.layer_type.startswith("sliding"):
        window = int(result.layer_type.split(":")[1])
        mask_tex = r"s_j = -\infty \text{ if } j > i \text{ or } j \le i - %d" % window
        prose_mask = (f"the causal mask hides later tokens and this sliding-window layer also hides keys more than "
                      f"{window - 1} tokens back")
    else:
        mask_tex = r"s_j = -\infty \text{ if } j > i"
        prose_mask = "the causal mask hides later tokens (−∞ before softmax, so weight 0)"
    formula = (r"s_j = (q_i\cdot k_j)\times %.4g,\quad %s,\quad a_{ij} = \frac{e^{s_j}}{\sum_{j'} e^{s_{j'}}}"
               % (result.scale, mask_tex))
    scale_words = (f"1/√{result.head_dim}" if math.isclose(result.scale, result.head_dim ** -0.5, rel_tol=1e-6)
                   else f"{result.scale:.4g}")
    prose = (f"Token {result.position} scores every key by the dot product of its query with the key, times "
             f"{scale_words}; {prose_mask}; softmax turns the scores into weights that sum to 1.")
    return ExplainStep(3, "Scores, mask and softmax → the attention row", prose, formula, fig)


def output_step(result: Any, theme: Theme = "light") -> ExplainStep:
    """Step 4: weighted sum of V → head output; concat heads, W_O; residual add and norm."""
    H, d = result.num_heads, result.head_dim
    heads = np.asarray(result.heads_concat, dtype=np.float32).reshape(H, d)  # (head, head_dim)
    heads_cut, cut_heads = _cut(heads)
    _, cut_hidden = _cut(result.attention_output)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.12,
                        subplot_titles=[f"all heads at token {result.position} ({cut_heads})",
                                        f"through W_O, residual, norm ({cut_hidden})"])
    fig.add_trace(go.Heatmap(z=heads_cut, y=[f"head {h}" + (" ◀" if h == result.head else "") for h in range(H)],
                             x=list(range(heads_cut.shape[1])), colorscale="RdBu", zmid=0, showscale=False,
                             hovertemplate="%{y}<br>dim %{x}<br>%{z:.4f}<extra></extra>"), 1, 1)
    for name, vector in (("attention output (concat·W_O)", result.attention_output),
                         ("residual stream", result.residual), ("after add & norm", result.block_output)):
        values, _ = _cut(np.asarray(vector, dtype=np.float32))
        fig.add_trace(go.Scatter(x=list(range(len(values))), y=values, name=name, mode="lines+markers",
                                 marker={"size": 4}), 1, 2)
    _finish(fig, f"Head output → concat of {H} heads → W_O → residual", theme, FIGURE_HEIGHT, False)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_layout(legend={"orientation": "h", "y": -0.18})

    output = r"o_i^{(%d)} = \sum_j a_{ij}\, v_j,\quad \mathrm{attn}_i = [o_i^{(0)};\dots;o_i^{(%d)}]\,W_O" % (
        result.head, H - 1)
    facts = result.facts
    norm, name = facts["norm_name"], facts["name"]
    placement = facts["norm_placement"]
    if placement == "pre+post (sandwich)":
        residual = r",\quad h_i' = h_i + %s" % _norm_of(facts, r"\mathrm{attn}_i")
        words = f"{name} normalises the attention output ({norm}) and adds it to the residual stream"
    elif placement == "pre-norm":
        residual = r",\quad h_i' = h_i + \mathrm{attn}_i"
        words = f"{name} adds it to the residual stream (the next {norm} comes before the MLP)"
    else:
        residual = r",\quad h_i' = %s" % _norm_of(facts, r"h_i + \mathrm{attn}_i")
        words = f"this post-norm model adds it to the residual stream and then applies {norm}"
    prose = (f"The weights mix the value vectors into head {result.head}'s output of {d} numbers; the {H} heads' "
             f"outputs are concatenated ({H}×{d} = {H * d}) and projected by W_O back to {result.hidden_size}; "
             f"{words}.")
    return ExplainStep(4, "Weighted sum of values → output, W_O, residual and norm", prose, output + residual, fig)


def verification_step(result: Any, theme: Theme = "light") -> ExplainStep:
    """Step 5: the recomputed row against the model's own attention, with ✓ or ✗ and the max |difference|."""
    keys = _token_keys(result)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=keys, y=np.asarray(result.recomputed, dtype=np.float32), name="recomputed by hand",
                         marker={"color": "#16a34a"}))
    fig.add_trace(go.Bar(x=keys, y=np.asarray(result.model_row, dtype=np.float32), name="the model's attention",
                         marker={"color": "#7c3aed"}))
    _finish(fig, f"{verdict(result)}", theme, FIGURE_HEIGHT - 40, False)
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(tickangle=-45, tickfont={"size": 10})
    formula = r"\max_j \left|a^{\text{recomputed}}_{ij} - a^{\text{model}}_{ij}\right| = %s %s 10^{-4}" % (
        _latex_number(result.max_abs_diff), "<" if result.passed else r"\ge")
    if result.passed:
        prose = (f"✓ The hand computation matches the attention the model itself returned (eager, "
                 f"output_attentions) to {_fmt(result.max_abs_diff)}: these are the model's real numbers.")
    else:
        prose = (f"✗ The recomputed row differs from the model's own attention by {_fmt(result.max_abs_diff)} "
                 "(≥ 1e-4): do not trust these steps for this model; please report it.")
    return ExplainStep(5, "Verified against the model", prose, formula, fig)


def verdict(result: Any) -> str:
    """'✓ matches the model (max |Δ| = 3.0e-08 < 1e-4)' or '✗ …'."""
    if result.passed:
        return f"✓ matches the model (max |Δ| = {_fmt(result.max_abs_diff)} < 1e-4)"
    return f"✗ differs from the model (max |Δ| = {_fmt(result.max_abs_diff)} ≥ 1e-4)"


def _latex_number(value: float) -> str:
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if -3 <= exponent <= 3:
        return f"{value:.4g}"
    return r"%.2f\times 10^{%d}" % (value / 10 ** exponent, exponent)


def explain_steps(result: Any, theme: Theme = "light") -> list[ExplainStep]:
    """The five steps, in order."""
    return [embedding_step(result, theme), qkv_step(result, theme), scores_step(result, theme),
            output_step(result, theme), verification_step(result, theme)]


def token_strip_html(result: Any) -> str:
    """The tokens with their index and id, the query token highlighted, masked keys dimmed (all escaped)."""
    cells = []
    mask = np.asarray(result.mask, dtype=bool)
    labels = plot_labels(result.tokens, getattr(result, "special", None), max_chars=24)  # escaped by plot_labels
    for index, (label, token_id) in enumerate(zip(labels, result.token_ids)):
        style = "padding:2px 6px;margin:2px;border-radius:6px;display:inline-block;border:1px solid #9ca3af;"
        if index == result.position:
            style += "background:#fde68a;color:#111827;font-weight:600;"
        elif not mask[index]:
            style += "opacity:0.4;"
        cells.append(f'<span class="atlas-token" style="{style}" title="id {int(token_id)}"><sub>{index}</sub> '
                     f'{label} <sup style="color:#6b7280">{int(token_id)}</sup></span>')
    return '<div class="explain-tokens" style="line-height:2">' + "".join(cells) + "</div>"


# ------------------------------------------------------------------------------------------- architecture card
_CARD_ROWS = (
    ("family", "Family"), ("architecture", "Type"), ("num_layers", "Layers"), ("num_heads", "Query heads"),
    ("num_key_value_heads", "Key/value heads"), ("head_dim", "Head size"), ("hidden_size", "Hidden size"),
    ("ffn_size", "FFN size"), ("mlp", "MLP"), ("vocab_size", "Vocabulary"), ("positional", "Positions"),
    ("norm", "Normalisation"), ("attention", "Attention"), ("embedding_scale", "Embedding scale"),
    ("parameters", "Parameters"),
)


def _card_value(key: str, value: Any) -> str:
    if key == "parameters":
        return f"{value:,} ({value / 1e6:.1f} M)"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def architecture_card_html(card: dict[str, Any], model_name: str = "") -> str:
    """The card as an HTML table next to the block diagram. Every string is escaped."""
    rows = []
    for key, label in _CARD_ROWS:
        value = card.get(key)
        if value is None:
            continue
        rows.append(f"<tr><th style='text-align:left;padding:2px 10px 2px 0'>{html.escape(label)}</th>"
                    f"<td>{html.escape(_card_value(key, value))}</td></tr>")
    title = html.escape(model_name or str(card.get("family", "")))
    table = (f"<div style='flex:1 1 320px'><h4 style='margin:0 0 6px'>{title}</h4>"
             f"<table style='border-collapse:collapse;font-size:0.9em'>{''.join(rows)}</table></div>")
    return ("<div class='architecture-card' style='display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start'>"
            f"{table}<div style='flex:0 0 auto'>{block_diagram_svg(card)}</div></div>")


def block_operations(card: dict[str, Any]) -> list[tuple[str, str]]:
    """One transformer block as a list of (kind, label), kind ∈ branch | norm | attention | mlp | add.

    `branch` marks where the residual stream splits off; the next `add` joins it back.
    """
    norm = card.get("norm_name", "LayerNorm")
    heads = f"{card['num_heads']} heads"
    if card.get("num_key_value_heads", card["num_heads"]) < card["num_heads"]:
        heads = f"{card['num_heads']} q heads / {card['num_key_value_heads']} kv (GQA)"
    attention_bits = ["self-attention", heads]
    if card.get("uses_qk_norm"):
        attention_bits.append("q/k norm")
    if card.get("uses_rope"):
        attention_bits.append("RoPE")
    attention_bits.append("causal" if card.get("architecture") == "decoder-only" else "bidirectional")
    if any(str(t).startswith("sliding") for t in card.get("layer_types", [])):
        attention_bits.append("sliding window on some layers")
    attention = " · ".join(attention_bits)
    mlp = f"MLP {card['hidden_size']}→{card['ffn_size']}→{card['hidden_size']}"
    placement = card.get("norm_placement")
    if placement == "pre+post (sandwich)":
        return [("branch", ""), ("norm", norm), ("attention", attention), ("norm", norm), ("add", "+"),
                ("branch", ""), ("norm", norm), ("mlp", mlp), ("norm", norm), ("add", "+")]
    if placement == "pre-norm":
        return [("branch", ""), ("norm", norm), ("attention", attention), ("add", "+"),
                ("branch", ""), ("norm", norm), ("mlp", mlp), ("add", "+")]
    return [("branch", ""), ("attention", attention), ("add", "+"), ("norm", norm),
            ("branch", ""), ("mlp", mlp), ("add", "+"), ("norm", norm)]


_FILL = {"norm": "#fef3c7", "attention": "#dbeafe", "mlp": "#dcfce7", "add": "#ffffff"}


def block_diagram_svg(card: dict[str, Any]) -> str:
    """An SVG of one block generated from the card: norms, attention, MLP and the residual connections."""
    operations = block_operations(card)
    width, center, box_width, box_height, gap = 360, 200, 250, 30, 12
    y = 34
    shapes: list[str] = []
    branch_y: float | None = None
    last_bottom = y

    def arrow(y_from: float, y_to: float) -> None:
        shapes.append(f"<line x1='{center}' y1='{y_from}' x2='{center}' y2='{y_to - 2}' stroke='#374151' "
                      f"marker-end='url(#arrow)'/>")

    shapes.append(f"<text x='{center}' y='20' text-anchor='middle' font-size='12'>input h (residual stream)</text>")
    for kind, label in operations:
        if kind == "branch":
            branch_y = last_bottom + gap / 2
            shapes.append(f"<circle cx='{center}' cy='{branch_y}' r='2.5' fill='#374151'/>")
            continue
        top = last_bottom + gap
        arrow(last_bottom, top)
        if kind == "add":
            cy = top + 11
            shapes.append(f"<circle cx='{center}' cy='{cy}' r='11' fill='#fff' stroke='#374151'/>"
                          f"<text x='{center}' y='{cy + 5}' text-anchor='middle' font-size='16'>+</text>")
            if branch_y is not None:
                left = center - box_width / 2 - 20
                shapes.append(f"<polyline points='{center},{branch_y} {left},{branch_y} {left},{cy} {center - 13},{cy}'"
                              " fill='none' stroke='#6b7280' stroke-dasharray='4 3' marker-end='url(#arrow)'/>")
                shapes.append(f"<text x='{left - 4}' y='{(branch_y + cy) / 2}' font-size='10' text-anchor='end' "
                              f"fill='#6b7280' transform='rotate(-90 {left - 4} {(branch_y + cy) / 2})'>residual</text>")
            branch_y = None
            last_bottom = top + 22
            continue
        height = box_height + (14 if kind == "attention" and len(label) > 40 else 0)
        shapes.append(f"<rect x='{center - box_width / 2}' y='{top}' width='{box_width}' height='{height}' rx='6' "
                      f"fill='{_FILL[kind]}' stroke='#374151'/>")
        lines = wrap_lines(label, 42)
        for index, line in enumerate(lines):
            text_y = top + height / 2 + 4 + (index - (len(lines) - 1) / 2) * 13
            shapes.append(f"<text x='{center}' y='{text_y}' text-anchor='middle' font-size='11'>"
                          f"{html.escape(line)}</text>")
        last_bottom = top + height
    arrow(last_bottom, last_bottom + gap + 4)
    shapes.append(f"<text x='{center}' y='{last_bottom + gap + 18}' text-anchor='middle' font-size='12'>"
                  f"to block ℓ+1 (× {int(card['num_layers'])} blocks)</text>")
    height = last_bottom + gap + 28
    placement = html.escape(str(card.get("norm_placement", "")))
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
            f"role='img' aria-label='one transformer block, {placement}' style='font-family:sans-serif;"
            "background:#fff;color:#111827;border-radius:8px'>"
            "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='6' markerHeight='6' "
            "orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' fill='#374151'/></marker></defs>"
            + "".join(shapes) + "</svg>")


def layer_types_summary(layer_types: Sequence[str]) -> str:
    """'sliding:512 ×15, full ×3' style summary."""
    counts: dict[str, int] = {}
    for kind in layer_types:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{kind} ×{count}" for kind, count in counts.items())
