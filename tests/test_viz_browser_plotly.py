"""Headless Chromium with the installed plotly.js: HTML-like tokens show as text on the axes and in hover labels."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from viz_fixtures import decoder_result
from viz import plot_head

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                       reason="chromium not installed (apt-get install -y chromium); CI always runs this"),
]
LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKENS = ["<bos>", "<img src=x onerror=alert(1)>", "<b>bold</b>", "a&amp;b", "the", "the"]


def test_plotly_shows_html_like_tokens_as_text(tmp_path):
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "figure.html"
    plot_head(decoder_result(TOKENS, names=[["uniform"]]), 0, 0).write_html(
        str(page_file), include_plotlyjs=True, full_html=True, div_id="figure")  # plotly.js inlined: offline
    dialogs, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            page.locator(".ytick text").first.wait_for(timeout=15_000)
            ticks = page.locator(".ytick text").all_text_contents()
            assert ticks[0] == "⟨bos⟩"
            assert ticks[1].startswith("<img␣src=x␣"), ticks
            assert "<b>bold</b>" in ticks and "a&amp;b" in ticks, "markup and entities stay literal text"
            assert ticks.count("the") == 2, "repeated tokens stay two rows"
            assert page.locator("#figure img").count() == 0 and page.locator(".ytick text b").count() == 0
            box = page.locator(".nsewdrag").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.3)  # row 1, key 0
            page.locator(".hoverlayer .hovertext").first.wait_for(timeout=5_000)
            hover = page.locator(".hoverlayer .hovertext").first.text_content()
        finally:
            browser.close()
    assert "query #1 <img␣src=x␣" in hover and "key #0 ⟨bos⟩" in hover and "weight 0.500" in hover, hover
    assert dialogs == []
    assert all(url.startswith("file://") for url in requests), requests
