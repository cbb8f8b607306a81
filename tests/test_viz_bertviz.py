"""The bertviz adapter: offline document (no CDN), sandboxed iframe, escaping, rounding, size limit."""

from __future__ import annotations

import html
import re

import pytest

from viz_fixtures import decoder_result, encoder_decoder_result, random_result
from viz import MAX_BERTVIZ_VALUES, bertviz_head_view_html, bertviz_model_view_html
from viz.assets import REQUIRE_SHIM, d3_source, jquery_source

EVIL = ["<bos>", "</script>", "<!--<script>", "<img src=x onerror=alert(1)>", " cat"]


def srcdoc_of(view: str) -> str:
    match = re.fullmatch(r'<iframe sandbox="allow-scripts" title="[^"]*" srcdoc="([^"]*)" style="[^"]*"></iframe>',
                         str(view))
    assert match, "expected exactly one sandboxed iframe with an escaped srcdoc"
    return html.unescape(match.group(1))


def test_offline_assets_come_from_installed_packages():
    assert "d3js.org" in d3_source() and 'version="5.' in d3_source().replace(" ", "")[:400] or "5." in d3_source()[:200]
    assert "jQuery" in jquery_source()[:200]
    assert "window.requirejs = require" in REQUIRE_SHIM


def test_head_view_is_a_sandboxed_iframe_without_cdn_or_require_config():
    view = bertviz_head_view_html(decoder_result(EVIL))
    assert "allow-same-origin" not in view
    document = srcdoc_of(view)
    assert not re.search(r"<script[^>]*\bsrc=", document), "no external scripts"
    assert "cdnjs" not in document and "require.config({" not in document
    assert document.count("</script>") == 4  # d3, jQuery, shim, bertviz: nothing closes a script early
    assert view._repr_html_() == str(view)


def test_tokens_cannot_close_the_inline_script():
    document = srcdoc_of(bertviz_head_view_html(decoder_result(EVIL)))
    bertviz_script = document[document.rindex('<script type="text/javascript">'):]
    assert "<\\/script>" in bertviz_script and "<\\!--<script>" in bertviz_script
    assert bertviz_script.count("</script>") == 1


def test_values_are_rounded_to_keep_html_small():
    document = srcdoc_of(bertviz_head_view_html(random_result("decoder", 10, 2, 2)))
    params = document[document.index("const params = "):document.index("const TEXT_SIZE")]
    assert not re.search(r"\d\.\d{4,}", params), "attention values carry at most 3 decimals"


def test_encoder_decoder_head_view_includes_all_three_attentions():
    document = srcdoc_of(bertviz_head_view_html(encoder_decoder_result(["▁I", "▁like", "tea"], ["我", "喜欢"])))
    for name in ('"Encoder"', '"Decoder"', '"Cross"'):
        assert name in document


def test_long_inputs_get_a_message_instead_of_a_frozen_page():
    result = random_result("decoder", 128, 18, 4)
    message = bertviz_head_view_html(result)
    assert "<iframe" not in message and "limited to short inputs" in message and f"{MAX_BERTVIZ_VALUES:,}" in message
    one_layer = bertviz_head_view_html(result, layer=3)
    assert one_layer.startswith("<iframe") and len(one_layer) < 1_500_000
    assert "<iframe" not in bertviz_model_view_html(result)


def test_model_view_and_layer_checks():
    result = decoder_result(["<bos>", "a", "b"])
    assert '"Layers"' in srcdoc_of(bertviz_model_view_html(result)) or "Layers" in srcdoc_of(bertviz_model_view_html(result))
    with pytest.raises(ValueError, match="layer 7 is out of range"):
        bertviz_head_view_html(result, layer=7)
