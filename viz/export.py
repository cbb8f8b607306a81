"""Exports of one view: a standalone HTML page that works offline (plotly.js inlined) and the shown result as JSON.

A Plotly figure becomes one HTML file with plotly.js from the installed package inlined (no CDN, no MathJax) and a
modebar sized for slides: the camera saves a PNG of SLIDE_WIDTH × SLIDE_HEIGHT, a second button an SVG of the same
size. An HTML view (token strip, bertviz) is wrapped in a full page as it is. `result_json` gives the tokens, the
shown layer's attention (head, query_pos, key_pos), the prediction and what was shown (model, view, layer, head),
reading one layer only (`attention[layer]`), so a long result's on-demand attention never builds its whole array.
"""

from __future__ import annotations

import html
import json
import math
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

if TYPE_CHECKING:
    from service.result import AttentionResult

SLIDE_WIDTH, SLIDE_HEIGHT = 1600, 900   # pixels: a 16:9 slide at full HD-ish resolution
DECIMALS = 4                            # attention weights in the JSON, rounded
MAX_JSON_VALUES = 4 * 1024 * 1024       # a layer with more weights (heads × queries × keys) exports the shown head only
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")

# Adds the SVG button next to Plotly's camera (a button with a click function cannot travel in the JSON config).
_SVG_BUTTON_SCRIPT = """
var gd = document.getElementById('{plot_id}');
var options = %(options)s;
var svgButton = {name: 'atlasDownloadSvg', title: 'Download plot as an SVG (%(size)s)', icon: Plotly.Icons.camera,
                 click: function (plot) { return Plotly.downloadImage(plot, options); }};
var config = Object.assign({}, %(config)s, {modeBarButtonsToAdd: [svgButton]});
return Plotly.react(gd, gd.data, gd.layout, config);
"""


def safe_filename(*parts: Any) -> str:
    """A file name from parts (model names, view keys...): letters, digits, `_.-` only, joined by `-`."""
    name = "-".join(SAFE_NAME.sub("_", str(part)).strip("_.") for part in parts if str(part))
    return name[:120] or "attention-atlas"


def slide_config(filename: str) -> dict[str, Any]:
    """Plotly config: the modebar always shown, its camera saving a slide-sized PNG named `filename`."""
    return {
        "displaylogo": False,
        "displayModeBar": True,
        "responsive": True,
        "toImageButtonOptions": {"format": "png", "filename": filename, "width": SLIDE_WIDTH,
                                 "height": SLIDE_HEIGHT, "scale": 1},
    }


def standalone_html(fig: go.Figure, filename: str = "attention-atlas", title: str | None = None) -> str:
    """One HTML document showing `fig` offline: plotly.js inlined, no MathJax, PNG and SVG buttons sized for slides.

    `filename` names the images the buttons save (without extension); `title` is the page title (default: the
    figure's title)."""
    filename = safe_filename(filename)
    config = slide_config(filename)
    svg_options = {"format": "svg", "filename": filename, "width": SLIDE_WIDTH, "height": SLIDE_HEIGHT}
    script = _SVG_BUTTON_SCRIPT % {"options": _script_json(svg_options), "config": _script_json(config),
                                   "size": f"{SLIDE_WIDTH}×{SLIDE_HEIGHT}"}
    page = pio.to_html(fig, config=config, include_plotlyjs=True, include_mathjax=False, full_html=True,
                       post_script=script, validate=False)
    heading = title if title is not None else _figure_title(fig)
    return page.replace("<head>", f"<head><title>{html.escape(heading)}</title>", 1)


def standalone_page(fragment: str, title: str) -> str:
    """An HTML view (token strip, bertviz iframe) as a full page of its own; `fragment` is already safe HTML."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            '<body style="margin:16px;font-family:system-ui,sans-serif">'
            f"{fragment}</body></html>\n")


def view_html(drawn: Any, filename: str, title: str) -> str:
    """The standalone page of what a view drew: a Plotly figure or an HTML string."""
    if isinstance(drawn, go.Figure):
        return standalone_html(drawn, filename, title)
    return standalone_page(str(drawn), title)


def result_json(result: "AttentionResult", view_key: str, selection: Any) -> dict[str, Any]:
    """The shown result as JSON-ready data: tokens, the shown layer's attention, prediction and what was shown.

    `selection` has `side`, `layer` and `head` (demos.attention_panel.Selection). The attention is
    (head, query_pos, key_pos) for the selected layer, rounded to DECIMALS: the cross-attention (decoder × encoder)
    for the cross view, else the side's self-attention. Only that layer is read (`attention[layer]`). A layer of
    more than MAX_JSON_VALUES weights keeps the selected head only (`heads` says which)."""
    side = selection.side
    layer, head = int(selection.layer), int(selection.head)
    cross = view_key == "cross" and result.cross_attention is not None
    array = result.cross_attention if cross else result.self_attention(side)
    layers, heads, queries, keys = array.shape  # (layer, head, query_pos, key_pos)
    layer = max(0, min(int(layers) - 1, layer))
    head = max(0, min(int(heads) - 1, head))
    if heads * queries * keys <= MAX_JSON_VALUES:
        shown = np.asarray(array[layer], dtype=np.float64)          # (head, query_pos, key_pos): one layer only
        shown_heads = list(range(int(heads)))
    else:
        shown = np.asarray(array[layer, head], dtype=np.float64)[None]   # (1, query_pos, key_pos)
        shown_heads = [head]
    data: dict[str, Any] = {
        "model_name": result.model_name,
        "task": result.task,
        "architecture": result.architecture,
        "view": view_key,
        "side": "cross" if cross else side,
        "layer": layer,
        "head": head,
        "heads": shown_heads,
        "prediction": _json_ready(result.prediction),
        "tokens": list(result.tokens(side)) if not cross else None,
        "query_tokens": list(result.tokens("decoder" if cross else side)),
        "key_tokens": list(result.tokens("encoder" if cross else side)),
        "attention_axes": ["head", "query_pos", "key_pos"],
        "attention": _rounded(shown),
        "notices": [str(notice) for notice in result.notices],
    }
    if cross:
        data["encoder_tokens"], data["decoder_tokens"] = data["key_tokens"], data["query_tokens"]
    return data


def dumps(data: dict[str, Any]) -> str:
    """JSON text of `result_json`'s data (UTF-8 readable: CJK tokens stay characters)."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# --- checking that a page is self-contained ---------------------------------------------------------------
def external_references(page: str) -> list[str]:
    """Every `src`/`href` (and `srcdoc` page inside) that points outside the file: anything but data:, blob:, #,
    javascript: and about:. Empty for a page that works offline."""
    finder = _ReferenceFinder()
    finder.feed(page)
    finder.close()
    return finder.external


class _ReferenceFinder(HTMLParser):
    LOCAL_SCHEMES = {"data", "blob", "javascript", "about"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "srcdoc":
                self.external.extend(external_references(value))
            elif name in ("src", "href", "srcset", "poster", "data", "action", "formaction"):
                reference = value.strip()
                if reference and not reference.startswith("#") and \
                        urlparse(reference).scheme.lower() not in self.LOCAL_SCHEMES:
                    self.external.append(f"<{tag} {name}={reference[:200]}>")

    handle_startendtag = handle_starttag


# --- helpers -------------------------------------------------------------------------------------------
def _script_json(value: Any) -> str:
    """JSON safe inside a <script>: no `</` or `<!--` can close or confuse it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _figure_title(fig: go.Figure) -> str:
    text = fig.layout.title.text if fig.layout.title is not None else None
    return re.sub(r"<[^>]*>", " ", str(text)).strip() if text else "Attention Atlas"


def _rounded(values: np.ndarray) -> list[Any]:
    """Nested lists rounded to DECIMALS; non-finite values (masked cells) become None."""
    rounded = np.round(values, DECIMALS)
    if np.isfinite(rounded).all():
        return rounded.tolist()
    return _finite_or_none(rounded.tolist())


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value if math.isfinite(value) else None


def _json_ready(value: Any) -> Any:
    """The prediction dict with numpy scalars and non-finite floats made JSON-safe."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
