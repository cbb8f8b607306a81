"""Shareable links in headless Chromium on the real embedded Gemma: a link reopens its tab, inputs, view, layer and
head; "Copy link" gives a link that reopens the same view; bad values show a message and the defaults, and nothing
from the address reaches the page as markup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

import pytest

from demos.attention_panel import OPENING_VIEW, VIEWS_BY_KEY, view_class
from test_browser_app import FIRST_RUN_MS, REDRAW_MS, RUN_MS, PageWatch, plot_title, wait_for_heatmap

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SENTENCE = "Today is a beautiful day."
SHARED = {"tab": "translate", "text": SENTENCE, "direction": "en-zh", "view": "heads", "layer": "3", "head": "1"}
HOSTILE = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>"


@pytest.fixture(scope="module")
def opened(browser: Any, embedded_app: Any) -> Iterator[Any]:
    """A function that opens the app at `?query` in a fresh page and returns its PageWatch (all closed at the end)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    watches: list[PageWatch] = []

    def open_page(query: str) -> PageWatch:
        watch = PageWatch(context.new_page())
        watch.server = embedded_app
        watch.page.set_default_timeout(REDRAW_MS)
        watch.page.goto(f"{embedded_app.url}/?{query}", timeout=60_000)
        watch.page.wait_for_selector("#gen-run", state="attached", timeout=60_000)
        watches.append(watch)
        return watch

    yield open_page
    for watch in watches:
        assert watch.console_errors == [], watch.console_errors
        assert watch.failed_requests == [], watch.failed_requests
        assert watch.external_requests == [], watch.external_requests
    context.close()


def selected_tab(page: Any) -> str:
    return page.locator("[role=tab][aria-selected=true]").first.inner_text().strip()


def assert_shows_the_shared_view(page: Any, timeout: int) -> str:
    """The Translate tab, its text and direction from the link, and the panel on the link's view at layer 3."""
    page.wait_for_function("() => document.querySelector('[role=tab][aria-selected=true]')"
                           ".innerText.includes('Translate')", timeout=REDRAW_MS)
    assert page.locator("#tr-text textarea").input_value() == SENTENCE
    assert page.locator("#tr-direction input[value='en-zh']").is_checked()
    wait_for_heatmap(page, "tr", timeout)
    heads = VIEWS_BY_KEY["heads"]
    page.wait_for_selector(f"#tr-plot.{view_class(heads)}", state="visible", timeout=REDRAW_MS)
    assert page.locator("#tr-view input").input_value() == heads.label
    assert page.locator("#tr-layer input[type=number]").input_value() == "3"
    title = plot_title(page, "tr")
    assert "layer 3" in title, title
    assert page.locator("#tr-output textarea").input_value().strip(), "no translation was shown"
    assert page.locator("#link-notice").inner_text().strip() == ""
    return title


def test_a_shared_link_reopens_the_same_view_and_copy_link_gives_it_back(opened: Any) -> None:
    first = opened(urlencode(SHARED))
    title = assert_shows_the_shared_view(first.page, FIRST_RUN_MS)
    first.page.click("#tr-copy-link")
    first.page.wait_for_function("() => document.querySelector('#tr-link input, #tr-link textarea').value"
                                 ".includes('tab=translate')", timeout=REDRAW_MS)
    copied = first.page.locator("#tr-link input, #tr-link textarea").first.input_value()
    parsed = urlparse(copied)
    assert f"{parsed.scheme}://{parsed.netloc}" == first.server.url
    assert dict(parse_qsl(parsed.query)) == SHARED, copied   # exactly the link format, nothing else
    second = opened(parsed.query)                            # the copied link, in another page
    assert assert_shows_the_shared_view(second.page, RUN_MS) == title


def test_bad_values_show_a_message_and_the_defaults_and_no_markup(opened: Any) -> None:
    query = urlencode({"tab": "ask", "question": HOSTILE, "context": "x" * 4001, "view": "<b>nope</b>",
                       "layer": "1" * 400, "head": "-1", "evil": "<script>window.__pwned=3</script>"})
    page = opened(query).page
    page.wait_for_function("() => document.querySelector('#link-notice').innerText.includes('could not be used')")
    assert selected_tab(page) == "Ask"
    notice = page.locator("#link-notice")
    assert notice.locator("li").count() == 4, notice.inner_text()   # context, view, layer, head
    assert notice.locator("img, script, b").count() == 0
    assert page.locator("#qa-question textarea").input_value() == HOSTILE   # a Textbox value, never markup
    assert page.locator("#qa-context textarea").input_value() == ""        # too long: left out, so no run
    assert page.locator("#qa-view input").input_value() == VIEWS_BY_KEY[OPENING_VIEW].label
    assert page.locator("#qa-layer input[type=number]").input_value() == "0"
    page.wait_for_timeout(500)
    assert "Run the model" in page.locator("#qa-info").inner_text()           # nothing ran
    assert page.evaluate("() => window.__pwned") is None


def test_an_unknown_tab_opens_generate_and_forgotten_still_works(opened: Any) -> None:
    page = opened("forgotten=1&tab=%3Cscript%3E&prompt=hello").page
    page.wait_for_function("() => document.querySelector('#link-notice').innerText.includes('could not be used')")
    assert selected_tab(page) == "Generate"
    assert page.locator("#gen-prompt textarea").input_value() == ""
    assert "Forgotten" in page.locator("#forget-status").inner_text()
    assert page.evaluate("() => window.__pwned") is None
