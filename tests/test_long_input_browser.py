"""A pasted paragraph in Ask, in headless Chromium on the real embedded Gemma: a 3,000-character context keeps its
whole attention (nothing cut), and the zoom shows a block of it at full resolution with real positions."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from bench.long_inputs import PARAGRAPH

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_MS = 420_000     # the first run of this module may load the model
CONTEXT = (PARAGRAPH * 12)[:3000]


def test_a_long_context_shows_its_whole_attention_with_zoom(browser: Any, embedded_app: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    query = urlencode({"tab": "ask", "context": CONTEXT, "question": "Where was Marie Curie born?",
                       "view": "zoom_head", "layer": 5, "head": 2})
    page.goto(f"{embedded_app.url}?{query}", timeout=60_000)   # the link runs Ask and opens the zoom
    page.wait_for_selector("#qa-plot.atlas-view-zoom_head .main-svg", timeout=RUN_MS)
    info = page.locator("#qa-info").inner_text()
    tokens = int(re.search(r"(\d+) decoder tokens", info).group(1))
    assert tokens > 900 and "shows the last" not in info, info     # the whole prompt, nothing cut
    assert "Warsaw" in page.locator("#qa-output").inner_text()
    title = page.locator("#qa-plot .gtitle").first.text_content() or ""
    assert "layer 5 · head 2" in title and "(full resolution)" in title, title
    assert f"× keys {tokens - 128}–{tokens - 1}" in title, title   # the default block: the last 128 × the last 128
    page.locator("#qa-zoom input").click()
    offered = page.get_by_role("option").all_text_contents()
    assert len(offered) == sum(range(1, -(-tokens // 128) + 1))     # every block pair a query can see
    page.get_by_role("option", name=re.compile(r"× keys 0–")).first.click()
    page.wait_for_function("() => /× keys 0–/.test(document.querySelector('#qa-plot .gtitle').textContent)",
                           timeout=30_000)
    assert errors == []
    context.close()
