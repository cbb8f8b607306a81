"""bertviz head view and model view that work offline, inside a sandboxed iframe, within a size limit.

bertviz writes HTML that loads require.js, d3 and jQuery from a CDN. Here its CDN <script src> and require.config
are removed, d3 + jQuery are inlined from installed packages with a small require shim (viz.assets), and the
document goes escaped into <iframe sandbox="allow-scripts" srcdoc="..."> (no same-origin: it cannot touch the app).
torch is imported only inside the functions here, because bertviz wants tensors.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .assets import REQUIRE_SHIM, d3_source, jquery_source
from .html_view import HTMLView
from .labels import display_tokens, shorten

if TYPE_CHECKING:
    from service.result import AttentionResult

# Attention values bertviz may embed (layers × heads × query × key, summed over encoder/decoder/cross).
# About 6 bytes each in HTML: 150,000 values ≈ 0.9 MB, which a browser lays out in about a second.
MAX_BERTVIZ_VALUES = 150_000
DECIMALS = 3

_CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']?https?://[^>]*>\s*</script>", re.IGNORECASE)
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)
_BLOCK_COMMENT = re.compile(r"/\*\*.*?\*/", re.DOTALL)
_SCRIPT_BODY = re.compile(r"(<script type=\"text/javascript\">)(.*)(</script>)", re.DOTALL)


def _attention_parts(result: "AttentionResult", layers: Sequence[int]) -> dict[str, np.ndarray]:
    parts = {"encoder_attention": result.encoder_attention, "decoder_attention": result.decoder_attention,
             "cross_attention": result.cross_attention}
    return {name: array for name, array in parts.items() if array is not None}


def _count_values(parts: dict[str, np.ndarray], layers: Sequence[int]) -> int:
    return sum(len(layers) * array.shape[1] * array.shape[2] * array.shape[3] for array in parts.values())


def _too_large(values: int, tokens: int, layers: Sequence[int], what: str) -> HTMLView:
    return HTMLView(
        '<div class="bertviz-too-large" style="padding:12px;border:1px solid #f59e0b;border-radius:8px;'
        'background:#fffbeb;color:#78350f">'
        f"<b>The bertviz {html.escape(what)} is limited to short inputs.</b> This one would embed "
        f"{values:,} attention values ({tokens} tokens × {len(layers)} layer(s)); the limit is "
        f"{MAX_BERTVIZ_VALUES:,}, beyond which the page freezes. Choose a single layer or a shorter input; "
        "the heatmap views show inputs of any length.</div>")


def _to_tensors(array: np.ndarray, layers: Sequence[int]) -> list:
    """bertviz wants one (1, head, query, key) torch tensor per layer; only `layers` are ever read."""
    import torch  # lazy: viz must stay importable without torch

    tensors = []
    for layer in range(array.shape[0]):
        if layer in layers:
            # float64 after rounding so tolist() prints "0.123", not float32 noise like "0.12300000339746475"
            values = np.round(array[layer].astype(np.float64), DECIMALS)  # (head, query_pos, key_pos)
            tensors.append(torch.from_numpy(values)[None])                   # (1, head, query_pos, key_pos)
        else:
            tensors.append(torch.zeros((1, array.shape[1], 1, 1), dtype=torch.float64))  # never read
    return tensors


def offline_document(bertviz_html: str, background: str = "#ffffff", color: str = "#111111") -> str:
    """Turn bertviz's returned HTML into a self-contained page: CDN script and require.config removed, d3,
    jQuery and the require shim inlined, "</" in the inline script escaped."""
    body = _CDN_SCRIPT.sub("", bertviz_html)
    match = _SCRIPT_BODY.search(body)
    if match is None:
        raise RuntimeError("unexpected bertviz output: no inline script found (bertviz version changed?)")
    script = _BLOCK_COMMENT.sub("", match.group(2), count=1)
    script = _REQUIRE_CONFIG.sub("", script, count=1)
    script = script.replace("</", "<\\/").replace("<!--", "<\\!--")  # tokens cannot end the script element
    body = body[: match.start()] + match.group(1) + script + match.group(3) + body[match.end():]
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<style>body{{margin:8px;background:{background};color:{color};"
            "font-family:'Helvetica Neue',Helvetica,Arial,'Noto Sans CJK SC','PingFang SC',sans-serif}</style>"
            f"<script>{d3_source()}</script><script>{jquery_source()}</script>"
            f"<script>{REQUIRE_SHIM}</script></head><body>{body}</body></html>")


def sandboxed_iframe(document: str, height: int, title: str) -> HTMLView:
    """`document` escaped into <iframe sandbox="allow-scripts" srcdoc=...> with a fixed height in pixels."""
    return HTMLView(
        f'<iframe sandbox="allow-scripts" title="{html.escape(title)}" srcdoc="{html.escape(document, quote=True)}" '
        f'style="width:100%;height:{int(height)}px;border:0;background:#ffffff"></iframe>')


def _layers(result: "AttentionResult", layer: int | Sequence[int] | None) -> list[int]:
    total = result.num_layers
    chosen = list(range(total)) if layer is None else [layer] if isinstance(layer, (int, np.integer)) else list(layer)
    for index in chosen:
        if not 0 <= int(index) < total:
            raise ValueError(f"layer {index} is out of range: there are {total} layers (0–{total - 1})")
    return [int(index) for index in chosen]


def _bertviz_arguments(result: "AttentionResult", layers: list[int]) -> dict:
    parts = _attention_parts(result, layers)
    if result.architecture == "encoder-decoder":
        arguments = {name: _to_tensors(array, layers) for name, array in parts.items()}
        arguments["encoder_tokens"] = _bertviz_tokens(result, "encoder")
        arguments["decoder_tokens"] = _bertviz_tokens(result, "decoder")
        return arguments
    side = result.main_side
    return {"attention": _to_tensors(result.self_attention(side), layers),
            "tokens": _bertviz_tokens(result, side)}


def _bertviz_tokens(result: "AttentionResult", side: str) -> list[str]:
    """Display strings cut to fit bertviz's fixed 110-pixel token boxes (drawn as SVG text, so not escaped)."""
    return [shorten(label, 14) for label in display_tokens(result.tokens(side), result.special(side))]


def bertviz_head_view_html(result: "AttentionResult", layer: int | Sequence[int] | None = None, *,
                           height: int | None = None) -> HTMLView:
    """bertviz's head view of `result` in an offline, sandboxed iframe (or a short message when too large).

    Args:
        layer: a layer index, a list of them, or None for all layers (when they fit MAX_BERTVIZ_VALUES).
        height: iframe height in pixels (default from the token count).
    Encoder-decoder results show encoder, decoder and cross attention (a menu inside the view).
    Tokens are display strings (⟨bos⟩, ␣); bertviz draws them as SVG text, never as HTML.
    """
    layers = _layers(result, layer)
    parts = _attention_parts(result, layers)
    values = _count_values(parts, layers)
    longest = max(len(result.tokens(side)) for side in ("encoder", "decoder")
                  if getattr(result, f"{side}_tokens") is not None)
    if values > MAX_BERTVIZ_VALUES:
        return _too_large(values, longest, layers, "head view")
    from bertviz import head_view  # lazy: imports torch

    page = head_view(**_bertviz_arguments(result, layers), include_layers=layers, layer=layers[0],
                     html_action="return").data
    height = height or int(min(2400, max(320, 22.5 * longest + 160)))
    return sandboxed_iframe(offline_document(page), height, "bertviz head view")


def bertviz_model_view_html(result: "AttentionResult", layer: int | Sequence[int] | None = None, *,
                            height: int | None = None) -> HTMLView:
    """bertviz's model view (every included layer × head as a thumbnail) offline, or a message when too large.

    Args: layer: index, list, or None for all layers; height: iframe height in pixels (default 900, scrolls).
    """
    layers = _layers(result, layer)
    parts = _attention_parts(result, layers)
    values = _count_values(parts, layers)
    if values > MAX_BERTVIZ_VALUES:
        longest = max(array.shape[-1] for array in parts.values())
        return _too_large(values, longest, layers, "model view")
    from bertviz import model_view  # lazy: imports torch

    page = model_view(**_bertviz_arguments(result, layers), include_layers=layers, display_mode="light",
                      html_action="return").data
    return sandboxed_iframe(offline_document(page), height or 900, "bertviz model view")
