"""Token strip: the text with each token shaded by the attention a chosen token gives it (HTML, everything escaped).

A long text pages: the strip shows the page of STRIP_PAGE_TOKENS tokens that holds the chosen token, and names the
strongest weights on the other pages, so a pasted paragraph stays readable and its update small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from plotly.colors import sample_colorscale

from ._common import check_index, side_of
from .arrays import visibility_mask, window_of
from .html_view import HTMLView
from .labels import display_tokens, escape_html
from .style import ATTENTION_CAVEAT, COLOR_SCALE, FONT_FAMILY, Theme, theme_colors

if TYPE_CHECKING:
    from service.result import AttentionResult

STRIP_PAGE_TOKENS = 256     # tokens per page of a long strip
ELSEWHERE_SHOWN = 3         # the strongest weights off the page, named under the strip ...
ELSEWHERE_SHARE = 0.1       # ... when they reach this share of the row's largest weight


def _text_color(rgb: str) -> str:
    """Black or white, whichever reads better on an 'rgb(r, g, b)' background."""
    red, green, blue = (float(part) for part in rgb[rgb.index("(") + 1:rgb.index(")")].split(","))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#000000" if luminance > 140 else "#ffffff"


def render_token_strip(
    weights: np.ndarray,
    tokens: Sequence[str],
    *,
    focus: int | None = None,
    special: Sequence[bool] | None = None,
    visible: Sequence[bool] | None = None,
    caption: str = "",
    theme: Theme = "light",
    page_tokens: int = STRIP_PAGE_TOKENS,
) -> HTMLView:
    """Tokens as a line of text, each shaded by its weight (array level).

    Args:
        weights: (T,) attention weights, one per token (e.g. one row of a head's attention).
        tokens: T raw token strings (escaped here). focus: index of the chosen token (outlined), or None.
        special: (T,) True for special tokens. visible: (T,) False where the chosen token cannot see the token
            (future tokens in causal attention): drawn dashed and unshaded, not as zero attention.
        caption: plain text shown above the strip (escaped here).
        page_tokens: past this many tokens only the page holding `focus` (else the first) is drawn.
    Shading is relative to the largest weight (legend shows the range); hover a token for its exact weight.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or weights.shape[0] != len(tokens):
        raise ValueError(f"weights has shape {weights.shape} but there are {len(tokens)} tokens")
    visible = np.ones(len(tokens), dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    colors = theme_colors(theme)
    shown = weights[visible]
    top = float(shown.max()) if shown.size and shown.max() > 0 else 1.0
    labels = display_tokens(tokens, special)
    first, last = page_of(len(tokens), focus, page_tokens)                             # tokens first..last - 1
    fills = sample_colorscale(COLOR_SCALE, list(np.clip(weights[first:last] / top, 0, 1)))   # the page's only
    spans = []
    for index, fill in zip(range(first, last), fills):
        label, weight, seen = labels[index], weights[index], visible[index]
        style = "display:inline-block;margin:2px 1px;padding:2px 4px;border-radius:4px;white-space:pre;"
        if not seen:
            style += f"border:1px dashed {colors['muted']};color:{colors['muted']};background:transparent;"
            tip = f"#{index} {label}: cannot be seen (masked)"
        else:
            style += f"background:{fill};color:{_text_color(fill)};"
            tip = f"#{index} {label}: {weight:.3f}"
        if index == focus:
            style += "outline:3px solid #f97316;outline-offset:1px;"
            tip += " (chosen token)"
        spans.append(f'<span class="atlas-token" style="{style}" title="{escape_html(tip)}">{escape_html(label)}</span>')
        if "⏎" in label:
            spans.append("<br>")
    gradient = ", ".join(sample_colorscale(COLOR_SCALE, [i / 8 for i in range(9)]))
    legend = (f'<div style="display:flex;align-items:center;gap:8px;font-size:12px;color:{colors["muted"]};'
              f'margin-top:8px">0<span style="display:inline-block;width:160px;height:10px;border-radius:3px;'
              f'background:linear-gradient(to right, {gradient})"></span>{top:.3f} (attention weight)'
              f'<span>· dashed = masked · orange outline = chosen token</span></div>')
    html = (f'<div class="attention-strip" style="background:{colors["paper"]};color:{colors["font"]};'
            f"font-family:{escape_html(FONT_FAMILY)};padding:12px 14px;border-radius:8px;line-height:2.1;"
            f'font-size:16px">'
            + (f'<div style="font-size:13px;margin-bottom:6px">{escape_html(caption)}</div>' if caption else "")
            + f'<div>{"".join(spans)}</div>{legend}'
            + (_page_note(first, last, labels, weights, visible, colors["muted"]) if last - first < len(tokens) else "")
            + f'<div style="font-size:12px;color:{colors["muted"]};margin-top:4px">{escape_html(ATTENTION_CAVEAT)}'
              "</div></div>")
    return HTMLView(html)


def page_of(count: int, focus: int | None, page_tokens: int) -> tuple[int, int]:
    """(first, last + 1) of the page of `page_tokens` tokens holding `focus` (None: the first page)."""
    if count <= page_tokens:
        return 0, count
    first = (max(0, focus or 0) // page_tokens) * page_tokens
    return first, min(count, first + page_tokens)


def _page_note(first: int, last: int, labels: Sequence[str], weights: np.ndarray, visible: np.ndarray,
               muted: str) -> str:
    """Which tokens the page shows, and the strongest visible weights on the other pages (those a shade would show:
    at least ELSEWHERE_SHARE of the row's largest)."""
    floor = ELSEWHERE_SHARE * float(weights[visible].max()) if visible.any() else np.inf
    outside = [index for index in np.argsort(-weights, kind="stable")
               if visible[index] and not first <= index < last and weights[index] >= floor][:ELSEWHERE_SHOWN]
    named = ", ".join(f"#{index} “{escape_html(labels[index])}” {weights[index]:.3f}" for index in outside)
    text = (f"Tokens #{first}–#{last - 1} of {len(labels)}: the page of the chosen token (choose a token on another "
            "page to see that page).")
    if named:
        text += f" Strongest on other pages: {named}."
    return f'<div class="atlas-strip-page" style="font-size:12px;color:{muted};margin-top:4px">{text}</div>'


def token_strip_html(result: "AttentionResult", layer: int, position: int, head: int | None = None,
                     side: str | None = None, *, direction: str = "from", theme: Theme = "light") -> HTMLView:
    """The tokens of `result` shaded by attention to or from the token at `position`.

    Args:
        layer, head: 0-based; head None = mean over heads.
        position: 0-based index of the chosen token (on the query side).
        side: "encoder" | "decoder" (self-attention; default result.main_side) or "cross"
            (position is a target token; the source tokens are shaded).
        direction: "from" = shade what the chosen token looks at (its row);
            "to" = shade how much each token looks at the chosen token (its column; self-attention only).
    """
    if direction not in ("from", "to"):
        raise ValueError(f"direction must be 'from' or 'to', got {direction!r}")
    if side == "cross":
        if result.cross_attention is None:
            raise ValueError(f"this {result.architecture} result has no cross-attention")
        if direction == "to":
            raise ValueError("direction 'to' needs self-attention; use side='encoder' or 'decoder'")
        attention, causal = result.cross_attention, False  # (layer, head, decoder_pos, encoder_pos)
        query_tokens, key_tokens, key_side = result.tokens("decoder"), result.tokens("encoder"), "encoder"
        window = None
    else:
        side = side_of(result, side)
        attention, causal = result.self_attention(side), result.is_causal(side)  # (layer, head, query, key)
        query_tokens = key_tokens = result.tokens(side)
        key_side = side
        window = window_of(result.layer_types, layer) if side == "decoder" and result.architecture == "decoder" else None
    layer = check_index("layer", layer, attention.shape[0], "layers")
    position = check_index("position", position, len(query_tokens), "tokens")
    heads = attention[layer] if head is None else attention[layer, check_index("head", head, attention.shape[1], "heads")][None]
    matrix = heads.mean(axis=0)  # (query_pos, key_pos)
    mask = visibility_mask(matrix.shape[0], matrix.shape[1], causal, window)
    weights, seen = (matrix[position], mask[position]) if direction == "from" else (matrix[:, position], mask[:, position])
    chosen = display_tokens([query_tokens[position]], [result.special("decoder" if side == "cross" else side)[position]])[0]
    which = f"layer {layer}, " + ("mean over heads" if head is None else f"head {head}")
    caption = (f"How much “{chosen}” (#{position}) attends to each token ({which})" if direction == "from"
               else f"How much each token attends to “{chosen}” (#{position}) ({which})")
    return render_token_strip(weights, key_tokens if direction == "from" else query_tokens,
                              focus=None if side == "cross" else position, special=result.special(key_side),
                              visible=seen, caption=caption, theme=theme)
