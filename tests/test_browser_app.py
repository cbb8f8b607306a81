"""End to end in headless Chromium on the real embedded Gemma: every tab answers, draws a heatmap, switches layer,
shows every view of the attention panel (the panel's own VIEWS table: views added later are walked too), with no
console error, no failed request and no request leaving 127.0.0.1."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from demos.attention_panel import VIEWS, VIEWS_BY_KEY, View, view_class

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST_RUN_MS = 420_000      # the first run may convert the GGUF (~90 s) and build the tokenizer on 2 cores
RUN_MS = 180_000
REDRAW_MS = 30_000
LOCAL_HOSTS = {"127.0.0.1"}
SETTLE_MS = 400             # after a view is drawn, time for a late console error (bertviz draws in its iframe)
PROBE_VIEWS = ("lens", "roles")  # run the generation model: offered where the tab's panel has the service (Generate)
TIME_LINE = re.compile(r"Time: model \d+\.\d\d s · attention capture \d+\.\d\d s")
SCREENSHOTS = os.environ.get("ATLAS_SCREENSHOTS")  # a folder: save what the focus tests show (for a person to look at)


class PageWatch:
    """A page plus everything it said or asked for: console errors, uncaught exceptions, failed and non-local
    requests."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.external_requests: list[str] = []
        page.on("console", lambda message: self.console_errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        page.on("request", self._request)
        self.failed_requests: list[str] = []
        page.on("requestfailed", self._request_failed)
        page.on("response", lambda response: self.failed_requests.append(
            f"{response.request.method} {response.url}: HTTP {response.status}") if response.status >= 400 else None)
        self.first_run = True
        self.server: Any = None

    def _request(self, request: Any) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("data", "blob", "about") or request.url.startswith("about:"):
            return
        if parsed.hostname not in LOCAL_HOSTS:
            self.external_requests.append(request.url)

    def _request_failed(self, request: Any) -> None:
        # Gradio's page closes its own event stream once no event is pending: an abort it asked for, not a failure
        if request.failure == "net::ERR_ABORTED" and urlparse(request.url).path.endswith("/gradio_api/queue/data"):
            return
        self.failed_requests.append(f"{request.method} {request.url}: {request.failure}")

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


def offered_views(page: Any, prefix: str) -> list[str]:
    """The labels the View menu offers now (opens the menu, reads it, closes it by clicking the info line)."""
    page.locator(f"#{prefix}-view input").click()
    labels = [text.replace("✓", "").strip() for text in page.get_by_role("option").all_text_contents()]
    page.locator(f"#{prefix}-info").click()
    return labels


def visit_every_view(watch: PageWatch, prefix: str) -> list[str]:
    """Show each view the panel's table offers for the tab's result, in table order, and check that each one is
    drawn in its target with no console error or failed request on the way. Returns the keys visited."""
    page = watch.page
    offered = offered_views(page, prefix)
    unknown = set(offered) - {view.label for view in VIEWS}
    assert not unknown, f"the menu offers views the table does not describe: {unknown}"
    visited = []
    for view in VIEWS:
        if view.label not in offered:
            continue
        if page.locator(f"#{prefix}-view input").input_value() != view.label:
            page.locator(f"#{prefix}-view input").click()
            page.get_by_role("option", name=re.compile(re.escape(view.label) + "$")).click()
        drawn = f"#{prefix}-{view.target}.{view_class(view)}"
        page.wait_for_selector(drawn, state="visible", timeout=REDRAW_MS)
        if view.target == "plot":
            page.wait_for_selector(f"{drawn} .main-svg", timeout=REDRAW_MS)
        else:
            assert page.locator(drawn).inner_html().strip(), f"{view.key}: empty HTML"
        other = "html" if view.target == "plot" else "plot"
        assert not page.locator(f"#{prefix}-{other}").is_visible(), f"{view.key}: the other target still shows"
        page.wait_for_timeout(SETTLE_MS)
        assert watch.console_errors == [], f"{prefix} · {view.key}: {watch.console_errors}"
        assert watch.failed_requests == [], f"{prefix} · {view.key}: {watch.failed_requests}"
        visited.append(view.key)
    # every view that applies to every result (no `applies` of its own) must be offered and drawn here
    always = {view.key for view in VIEWS if view.applies is View.__dataclass_fields__["applies"].default}
    assert always <= set(visited), f"{prefix}: views missing from the menu: {always - set(visited)}"
    return visited


def assert_opens_on_the_answer_focus(page: Any, prefix: str, words: list[str]) -> None:
    """A new few-shot result is drawn as the answer focus, with the user's words among the column labels."""
    focus = VIEWS_BY_KEY["focus"]
    page.wait_for_selector(f"#{prefix}-plot.{view_class(focus)} .main-svg", state="visible", timeout=REDRAW_MS)
    assert page.locator(f"#{prefix}-view input").input_value() == focus.label
    assert "answer focus" in plot_title(page, prefix)
    labels = "".join(page.locator(f"#{prefix}-plot g[class*='tick'] text").all_text_contents()).replace("␣", "")
    for word in words:
        assert word in labels, f"{prefix}: {word!r} is not among the focus labels {labels[:300]!r}"
    screenshot(page, f"#{prefix}-attention", f"{prefix}-focus")


def compare_zero_shot(watch: PageWatch, prefix: str) -> None:
    """The zero-/few-shot control runs the model once more and shows both answers and both runs' shares."""
    page = watch.page
    page.click(f"#{prefix}-shots-run")
    answers = page.locator(f"#{prefix}-shots-answers")
    answers.get_by_text("Zero-shot: no demonstrations").wait_for(timeout=RUN_MS)
    assert re.search(r"Few-shot: \d+ demonstrations", answers.inner_text())
    assert answers.locator("tr").count() >= 3, "answers and scores of both runs"
    page.wait_for_selector(f"#{prefix}-shots-plot .main-svg", timeout=REDRAW_MS)
    assert page.locator(f"#{prefix}-shots-plot .barlayer").count() >= 2, "shares of both runs"
    page.wait_for_timeout(SETTLE_MS)
    assert watch.console_errors == [], f"{prefix} · compare: {watch.console_errors}"
    screenshot(page, f"#{prefix}-shots", f"{prefix}-compare")


def screenshot(page: Any, selector: str, name: str) -> None:
    if SCREENSHOTS:
        page.wait_for_selector(f"{selector} .main-svg", timeout=REDRAW_MS)
        page.wait_for_timeout(SETTLE_MS)
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        # a gr.Group repeats its elem_id on an inner block: the outer one holds everything
        page.locator(selector).first.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def assert_time_line(page: Any, prefix: str) -> None:
    """Every task states its time the same way: model time and attention-capture time."""
    info = page.locator(f"#{prefix}-info").inner_text()
    assert TIME_LINE.search(info), info


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
    assert_time_line(page, "gen")
    assert set(PROBE_VIEWS) <= set(visit_every_view(watch, "gen"))
    page.locator("#gen-view input").click()  # back to the first view for the Stop test
    page.get_by_role("option", name=re.compile(re.escape(VIEWS[0].label) + "$")).click()
    page.wait_for_selector(f"#gen-plot.{view_class(VIEWS[0])}", state="visible", timeout=REDRAW_MS)


def choose_view(page: Any, prefix: str, key: str) -> None:
    view = next(view for view in VIEWS if view.key == key)
    page.locator(f"#{prefix}-view input").click()
    page.get_by_role("option", name=re.compile(re.escape(view.label) + "$")).click()
    page.wait_for_selector(f"#{prefix}-{view.target}.{view_class(view)}", state="visible", timeout=REDRAW_MS)


def test_generate_shows_the_step_slider_the_lens_and_head_roles(watch: PageWatch) -> None:
    """After the run above: each generated token's candidates and attention, step by step; the logit lens with its
    check against the model; the head summary naming roles; no console error."""
    page = watch.page
    page.wait_for_selector("#gen-steps", state="visible", timeout=REDRAW_MS)
    page.wait_for_selector("#gen-step-candidates .barlayer .point", state="attached", timeout=REDRAW_MS)
    title = page.locator("#gen-step-candidates .gtitle").first.text_content() or ""
    assert "rank 0 = the model's first choice" in title and re.search(r"Step 1 of \d+", title), title
    set_number(page, "gen-step", 3)
    page.wait_for_function("() => document.querySelector('#gen-step-candidates .gtitle').textContent"
                           ".includes('Step 3 of')", timeout=REDRAW_MS)
    assert "the last token it had" in page.locator("#gen-step-strip").inner_text()
    page.wait_for_selector("#gen-step-layers .heatmaplayer image, #gen-step-layers .hm image", state="attached")
    choose_view(page, "gen", "lens")
    page.wait_for_function("() => document.querySelector('#gen-plot').textContent.includes('max difference')",
                           timeout=RUN_MS)
    lens_text = page.locator("#gen-plot").text_content() or ""
    assert "✓" in lens_text and "Last layer vs the model's own output" in lens_text
    choose_view(page, "gen", "summary")
    page.wait_for_function("() => /· (induction|previous|sink|local|broad|mixed)/.test("
                           "document.querySelector('#gen-plot').textContent)", timeout=REDRAW_MS)
    choose_view(page, "gen", "roles")
    page.click("#gen-open-view")
    page.wait_for_selector("#gen-plot.atlas-view-head", state="visible", timeout=REDRAW_MS)
    assert watch.console_errors == [] and watch.failed_requests == []


def test_stop_button_ends_a_long_generation(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Generate")
    page.locator("#gen-prompt textarea").fill("Write a long story about 冬天的美景:")
    set_number(page, "gen-max-new-tokens", 200)
    page.click("#gen-run")
    output = page.locator("#gen-output textarea")
    # This run's own first tokens: the panel says it is running (the box was emptied before), and text has come.
    page.wait_for_function("() => document.querySelector('#gen-info').innerText.includes('Running')"
                           " && document.querySelector('#gen-output textarea').value.length > 0", timeout=RUN_MS)
    page.click("#gen-stop")
    # Once the server has taken the Stop (it says so in the info line), at most one more token may come: on a
    # loaded 2-core machine the click itself can take seconds to reach the server.
    page.wait_for_function("() => /Stopping|Stopped on request/.test(document.querySelector('#gen-info').innerText)",
                           timeout=RUN_MS)
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
    assert_opens_on_the_answer_focus(page, "qa", ["什么是", "量子"])
    page.wait_for_selector("#qa-output mark", timeout=REDRAW_MS)
    assert page.locator("#qa-output mark").inner_text().strip()
    page.locator("#qa-prompt-panel").get_by_text("Prompt sent to the model").click()
    page.wait_for_selector("#qa-prompt .atlas-seg", timeout=REDRAW_MS)
    assert "什么是量子计算" in page.locator("#qa-prompt .atlas-prompt-tokens").inner_text()
    switch_layer(page, "qa", 17)
    assert_time_line(page, "qa")
    visit_every_view(watch, "qa")
    compare_zero_shot(watch, "qa")


def test_translate_into_chinese_and_switch_layer(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Translate")
    page.locator("#tr-text textarea").fill("Today is a beautiful day.")
    page.locator("#tr-direction").get_by_text("English → Chinese").click()
    page.click("#tr-run")
    wait_for_heatmap(page, "tr", watch.run_timeout())
    assert_opens_on_the_answer_focus(page, "tr", ["Today", "beautiful", "day"])
    translation = page.locator("#tr-output textarea").input_value()
    assert re.search(r"[\u4e00-\u9fff]", translation), f"no Chinese in {translation!r}"
    assert "en-zh" in page.locator("#tr-json").inner_text()
    switch_layer(page, "tr", 3)
    assert_time_line(page, "tr")
    assert "align" in visit_every_view(watch, "tr"), "a decoder translation has the source alignment"
    choose_view(page, "tr", "shares")
    screenshot(page, "#tr-attention", "tr-shares")
    compare_zero_shot(watch, "tr")


def test_sentiment_example_and_every_view(watch: PageWatch) -> None:
    page = watch.page
    open_tab(page, "Sentiment")
    page.get_by_text("这部电影非常感人，我忍不住哭了。").first.click()
    page.wait_for_function("() => document.querySelector('#sent-text textarea').value.includes('电影')")
    page.click("#sent-run")
    wait_for_heatmap(page, "sent", watch.run_timeout())
    assert_opens_on_the_answer_focus(page, "sent", ["电影", "感", "哭了"])
    shown = page.locator("#sent-output").inner_text()
    assert "positive" in shown and "negative" in shown and "%" in shown, shown  # both labels with confidences
    assert re.search(r'"label"\s*:\s*"(positive|negative)"', page.locator("#sent-json").inner_text())
    switch_layer(page, "sent", 9)
    assert_time_line(page, "sent")
    visit_every_view(watch, "sent")
    choose_view(page, "sent", "shares")
    screenshot(page, "#sent-attention", "sent-shares")
    compare_zero_shot(watch, "sent")


def test_no_console_error_and_no_request_left_the_machine(watch: PageWatch) -> None:
    assert watch.console_errors == []
    assert watch.failed_requests == []
    assert watch.external_requests == []
    assert "Traceback" not in watch.server.log_text(), watch.server.log_text()[-3000:]
