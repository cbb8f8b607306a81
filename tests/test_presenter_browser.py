"""Presenter mode in headless Chromium on the real app: `?presenter=1` enlarges the type and folds the technical
controls away, the toggle undoes it, and in Gradio's dark theme the plots lose their white card."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_MS = 420_000    # the first run of this module may load the model
PRESENTER_PX = 20


def _font_px(page: Any, selector: str) -> float:
    return float(page.evaluate(f"parseFloat(getComputedStyle(document.querySelector({selector!r})).fontSize)"))


def _open(browser: Any, url: str, **context: Any) -> tuple[Any, Any, list[str]]:
    opened = browser.new_context(viewport={"width": 1280, "height": 1000}, **context)
    page = opened.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.goto(url, timeout=60_000)
    page.wait_for_selector("#gen-run", timeout=60_000)   # the first tab: the others render when opened
    return opened, page, errors


def test_presenter_link_enlarges_the_type_and_the_toggle_undoes_it(browser: Any, embedded_app: Any) -> None:
    opened, page, errors = _open(browser, f"{embedded_app.url}?presenter=1")
    page.wait_for_function("() => document.body.classList.contains('atlas-presenter')", timeout=30_000)
    assert page.locator("#presenter-toggle input").is_checked()
    page.get_by_role("tab", name="Sentiment", exact=True).click()
    assert _font_px(page, "#sent-text label span, #sent-text label") >= PRESENTER_PX
    assert _font_px(page, "#sent-text textarea") >= PRESENTER_PX
    assert not page.locator("#sent-json").is_visible()           # the technical controls are folded away
    page.locator("#sent-text textarea").fill("这部电影太好看了，我非常喜欢！")
    page.click("#sent-run")
    page.wait_for_selector("#sent-plot .main-svg", timeout=RUN_MS)
    page.wait_for_selector("#sent-plot .gtitle", state="attached", timeout=30_000)
    assert _font_px(page, "#sent-plot .gtitle") >= PRESENTER_PX   # figure titles scale too
    page.locator("#presenter-toggle input").uncheck()
    page.wait_for_function("() => !document.body.classList.contains('atlas-presenter')", timeout=10_000)
    assert _font_px(page, "#sent-text textarea") < PRESENTER_PX
    assert page.locator("#sent-json").is_visible()
    assert errors == []
    opened.close()


def test_plots_follow_the_dark_theme(browser: Any, embedded_app: Any) -> None:
    opened, page, errors = _open(browser, f"{embedded_app.url}?__theme=dark", color_scheme="dark")
    page.wait_for_function("() => document.body.classList.contains('dark')", timeout=30_000)
    page.get_by_role("tab", name="Sentiment", exact=True).click()
    page.locator("#sent-text textarea").fill("The food was cold and the service was terribly slow.")
    page.click("#sent-run")
    page.wait_for_selector("#sent-plot .main-svg", timeout=RUN_MS)
    background = page.evaluate("getComputedStyle(document.querySelector('#sent-plot .main-svg')).backgroundColor")
    assert background in ("rgba(0, 0, 0, 0)", "transparent"), background
    title_fill = page.evaluate("getComputedStyle(document.querySelector('#sent-plot .gtitle')).fill")
    assert title_fill != "rgb(17, 24, 39)", title_fill                 # not the light theme's dark text
    assert errors == []
    opened.close()
