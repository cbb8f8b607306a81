"""Headless Chromium: the bertviz views render offline (an SVG inside the sandboxed iframe), no request leaves
127.0.0.1, and tokens that look like HTML stay text."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from viz_fixtures import decoder_result, encoder_decoder_result
from viz import bertviz_head_view_html, bertviz_model_view_html, token_strip_html

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not HAVE_CHROMIUM and not os.environ.get("CI"),
                       reason="chromium not installed (apt-get install -y chromium); CI always runs this"),
]
LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKENS = ["<bos>", "The", " cat", "</script>", "<!--<script>", "<img src=x onerror=alert(1)>", "的", " cat"]


@pytest.fixture(scope="module")
def served_page(tmp_path_factory):
    """A page with the bertviz views and a token strip, served by a local http.server on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("bertviz")
    decoder = decoder_result(TOKENS)
    translation = encoder_decoder_result(["▁I", "▁like", "▁tea", "</s>"], ["我", "喜欢", "茶", "。"])
    body = (f'<div id="head">{bertviz_head_view_html(decoder)}</div>'
            f'<div id="model">{bertviz_model_view_html(decoder)}</div>'
            f'<div id="cross">{bertviz_head_view_html(translation)}</div>'
            f'<div id="strip">{token_strip_html(decoder, 0, 3)}</div>')
    (folder / "index.html").write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}</body></html>",
                                       encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def test_bertviz_renders_offline_inside_the_sandbox(served_page):
    from playwright.sync_api import sync_playwright

    requests, dialogs, errors = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(served_page)
            for view in ("head", "model", "cross"):
                frame = page.frame_locator(f"#{view} iframe")
                frame.locator("svg").first.wait_for(state="attached", timeout=15_000)
                assert frame.locator("svg *").count() > 10, f"{view}: the SVG is empty"
            head = page.frame_locator("#head iframe")
            texts = head.locator("svg text").all_text_contents()
            assert "</script>" in texts and "<!--<script>" in texts and "⟨bos⟩" in texts and "的" in texts
            assert any(text.startswith("<img␣src=x") for text in texts)
            cross = page.frame_locator("#cross iframe")
            cross.locator("#filter").select_option(label="Cross")  # encoder-decoder: pick the cross-attention
            page.wait_for_timeout(300)
            cross_texts = cross.locator("svg text").all_text_contents()
            assert "喜欢" in cross_texts and "␣like" in cross_texts
            assert page.locator("#strip span[title]").count() == len(TOKENS)
            assert page.locator("#strip img").count() == 0
            page.wait_for_timeout(300)
            sandbox = page.locator("#head iframe").get_attribute("sandbox")
        finally:
            browser.close()
    assert sandbox == "allow-scripts"
    assert dialogs == [], "a token ran as script"
    assert errors == [], f"JavaScript errors: {errors}"
    outside = [url for url in requests
               if urlparse(url).scheme not in ("about", "data") and urlparse(url).hostname != "127.0.0.1"]
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    assert requests, "the page itself was requested"
