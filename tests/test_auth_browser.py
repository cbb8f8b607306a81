"""In headless Chromium, behind the password: the login form keeps the app out of sight until the right password;
a tab's third model request is refused on the page; a closed tab gives its turns back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from access_fixtures import PASSWORD, USER, GatedService, ServedApp, wait_for

from demos.turns import TURNS_PER_VISITOR

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    service = GatedService()
    served = ServedApp(service, auth_lines=f"{USER}:{PASSWORD}\n")
    yield served
    service.gate.set()
    served.close()


def log_in(page: Any, url: str, password: str) -> None:
    page.goto(url, wait_until="load")
    page.get_by_label("username").fill(USER)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_the_app_appears_only_after_the_right_password(served: ServedApp, browser: Any) -> None:
    served.service.gate.set()
    page = browser.new_page()
    try:
        log_in(page, served.url, "wrong-password")
        page.get_by_text("Incorrect Credentials", exact=False).wait_for(timeout=30_000)
        assert page.locator("#tabs").count() == 0 and "Run a real transformer" not in page.content()
        log_in(page, served.url, PASSWORD)
        page.get_by_role("tab", name="Sentiment").wait_for(timeout=30_000)
        page.get_by_role("tab", name="Sentiment").click()
        page.locator("#sent-text textarea").fill("A warm, funny film.")
        page.locator("#sent-run").click()
        page.wait_for_function("() => (document.querySelector('#sent-json')?.innerText || '').includes('label')",
                               timeout=30_000)
    finally:
        page.close()


def test_a_third_request_is_refused_on_the_page_and_a_closed_tab_gives_its_turns_back(
        served: ServedApp, browser: Any) -> None:
    gate = served.service.gate
    gate.clear()
    context = browser.new_context()
    page = context.new_page()
    try:
        log_in(page, served.url, PASSWORD)
        # Translate runs (held at the gate) and Generate waits behind it in the one-at-a-time model group; Sentiment,
        # the third, is refused (its own batched group, shared with Ask, counts towards the same two turns)
        runs = [("Translate", "#tr-text textarea", "#tr-run"), ("Generate", "#gen-prompt textarea", "#gen-run"),
                ("Sentiment", "#sent-text textarea", "#sent-run")]
        for tab, field, button in runs:
            page.get_by_role("tab", name=tab).click()
            page.locator(field).fill("Where is Paris?")
            page.locator(button).click()
            if tab != "Sentiment":
                wait_for(lambda: len(served.sessions_waiting()) == 1 and served.held(served.sessions_waiting()[0]) >= 1,
                         what=f"{tab} to join the queue")
        page.get_by_text(f"You already have {TURNS_PER_VISITOR} requests waiting", exact=False).first.wait_for(
            timeout=30_000)
        session = served.sessions_waiting()[0]
        assert served.held(session) == TURNS_PER_VISITOR
    finally:
        context.close()  # the tab closes with one request running and one waiting
    wait_for(lambda: served.held(session) <= 1, timeout=30, what="the closed tab's waiting request to leave")
    gate.set()
    wait_for(lambda: served.held(session) == 0, timeout=30, what="the closed tab's running request to end")

