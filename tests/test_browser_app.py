"""End to end in headless Chromium on the real embedded Gemma: every tab answers, draws a heatmap, switches layer,
with no console error and no request leaving 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST_RUN_MS = 420_000      # the first run may convert the GGUF (~90 s) and build the tokenizer on 2 cores
RUN_MS = 180_000
REDRAW_MS = 30_000
LOCAL_HOSTS = {"127.0.0.1"}


class PageWatch:
    """A page plus everything it said or asked for: console errors, uncaught exceptions, non-local requests."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.external_requests: list[str] = []
        page.on("console", lambda message: self.console_errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        page.on("request", self._request)
        self.first_run = True
        self.server: Any = None

    def _request(self, request: Any) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("data", "blob", "about") or request.url.startswith("about:"):
            return
        if parsed.hostname not in LOCAL_HOSTS:
            self.external_requests.append(request.url)

    def run_timeout(self) -> int:
        timeout = FIRST_RUN_MS if self.first_run else RUN_MS
        self.first_run = False
        return timeout


@pytest.fixture(scope="module")
def watch(browser: Any, embedded_app: Any) -> Iterator[PageWatch]:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    watched = PageWatch(page)
    watched.server = embedded_app
    page.set_default_timeout(REDRAW_MS)
    page.goto(embedded_app.url, timeout=60_000)
    page.wait_for_selector("#gen-run", timeout=60_000)
    yield watched
    context.close()


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def plot_title(page: Any, prefix: str) -> str:
    return page.locator(f"#{prefix}-plot .gtitle").first.text_content() or ""


def wait_for_heatmap(page: Any, prefix: str, timeout: int) -> None:
    """A rendered Plotly figure with heatmap cells in the tab's attention panel."""
    page.wait_for_selector(f"#{prefix}-plot .main-svg", timeout=timeout)
    page.wait_for_selector(f"#{prefix}-plot .heatmaplayer image, #{prefix}-plot .hm image", state="attached",
                           timeout=REDRAW_MS)


def switch_layer(page: Any, prefix: str, layer: int) -> None:
    """Type a layer into the slider's number box; the plot must redraw at that layer (the model is not rerun)."""
    box = page.locator(f"#{prefix}-layer input[type=number]")
    box.fill(str(layer))
    box.press("Enter")
    page.wait_for_function(
        "([selector, text]) => { const t = document.querySelector(selector); return t && t.textContent.includes(text); }",
        arg=[f"#{prefix}-plot .gtitle", f"layer {layer}"], timeout=REDRAW_MS)


def set_number(page: Any, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_generate_streams_answers_draws_and_switches_layer(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Generate")
    page.locator("#gen-prompt textarea").fill("今天天气很好，我想去公园散步。")
    page.get_by_text("Sampling settings").click()
    set_number(page, "gen-max-new-tokens", 12)
    page.click("#gen-run")
    wait_for_heatmap(page, "gen", watch.run_timeout())
    assert page.locator("#gen-output textarea").input_value().strip(), "no continuation was shown"
    assert '"text"' in page.locator("#gen-json").inner_text()
    assert "google/gemma-3-270m" in page.locator("#gen-info").inner_text()
    switch_layer(page, "gen", 5)
    assert "layer 5" in plot_title(page, "gen")


def test_stop_button_ends_a_long_generation(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Generate")
    page.locator("#gen-prompt textarea").fill("Write a long story about 冬天的美景:")
    set_number(page, "gen-max-new-tokens", 200)
    page.click("#gen-run")
    output = page.locator("#gen-output textarea")
    page.wait_for_function("() => document.querySelector('#gen-output textarea').value.length > 0",
                           timeout=RUN_MS)
    page.click("#gen-stop")
    page.wait_for_timeout(2500)
    stopped = output.input_value()
    page.wait_for_timeout(2500)
    assert output.input_value() == stopped, "text kept growing after Stop"
    # The attention of the text written so far is drawn, and the panel says the run was stopped early.
    wait_for_heatmap(page, "gen", RUN_MS)
    assert "Stopped on request after" in page.locator("#gen-info").inner_text()
    set_number(page, "gen-max-new-tokens", 8)  # and the model is free again for the next run
    page.click("#gen-run")
    page.wait_for_function("() => !document.querySelector('#gen-info').innerText.includes('Stopped on request')",
                           timeout=RUN_MS)
    wait_for_heatmap(page, "gen", RUN_MS)


def test_ask_answers_from_the_context_and_shows_the_fewshot_prompt(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Ask")
    page.get_by_text("什么是量子计算？").first.click()  # the example fills context and question
    page.wait_for_function("() => document.querySelector('#qa-context textarea').value.includes('量子')")
    page.click("#qa-run")
    wait_for_heatmap(page, "qa", watch.run_timeout())
    page.wait_for_selector("#qa-output mark", timeout=REDRAW_MS)
    assert page.locator("#qa-output mark").inner_text().strip()
    page.locator("#qa-prompt-panel").get_by_text("Prompt sent to the model").click()
    page.wait_for_selector("#qa-prompt .atlas-seg", timeout=REDRAW_MS)
    assert "什么是量子计算" in page.locator("#qa-prompt .atlas-prompt-tokens").inner_text()
    switch_layer(page, "qa", 17)


def test_translate_into_chinese_and_switch_layer(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Translate")
    page.locator("#tr-text textarea").fill("Today is a beautiful day.")
    page.locator("#tr-direction").get_by_text("English → Chinese").click()
    page.click("#tr-run")
    wait_for_heatmap(page, "tr", watch.run_timeout())
    translation = page.locator("#tr-output textarea").input_value()
    assert re.search(r"[\u4e00-\u9fff]", translation), f"no Chinese in {translation!r}"
    assert "en-zh" in page.locator("#tr-json").inner_text()
    switch_layer(page, "tr", 3)


def test_sentiment_example_and_other_views(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Sentiment")
    page.get_by_text("这部电影非常感人，我忍不住哭了。").first.click()
    page.wait_for_function("() => document.querySelector('#sent-text textarea').value.includes('电影')")
    page.click("#sent-run")
    wait_for_heatmap(page, "sent", watch.run_timeout())
    shown = page.locator("#sent-output").inner_text()
    assert "positive" in shown and "negative" in shown and "%" in shown, shown  # both labels with confidences
    assert re.search(r'"label"\s*:\s*"(positive|negative)"', page.locator("#sent-json").inner_text())
    switch_layer(page, "sent", 9)
    # Another view from the same kept result: the model overview of every layer and head.
    page.locator("#sent-view input").click()
    page.get_by_role("option", name=re.compile("Model overview")).click()
    page.wait_for_function(
        "() => { const t = document.querySelector('#sent-plot .gtitle'); return t && !t.textContent.includes('layer 9'); }",
        timeout=REDRAW_MS)
    assert page.locator("#sent-plot .main-svg").count() >= 1


def test_no_console_error_and_no_request_left_the_machine(watch: PageWatch) -> None:
    assert watch.console_errors == []
    assert watch.external_requests == []
    assert "Traceback" not in watch.server.log_text(), watch.server.log_text()[-3000:]
