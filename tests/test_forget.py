"""What is kept, said plainly: the page says what the server keeps, and "Forget my results" (or /forget) drops this
visitor's kept results at once (the ResultStore and Gradio's copy of the session), nobody else's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from access_fixtures import GatedService, ServedApp

from demos.privacy import FORGOTTEN_MESSAGE, KEPT_NOTE

TASKS = ("sentiment", "qa")


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    service = GatedService()
    service.gate.set()  # no waiting here: runs answer at once
    served = ServedApp(service)
    yield served
    served.close()


def run_two_tasks(client: Any) -> None:
    client.predict("A warm, funny film.", api_name="/classify")
    client.predict("Paris is the capital of France.", "What is the capital of France?", api_name="/answer")


def kept(served: ServedApp, session: str) -> list[str]:
    return [task for task in TASKS if served.store.get(session, task) is not None]


def test_the_note_says_what_is_kept_and_for_how_long() -> None:
    assert "in memory only" in KEPT_NOTE and "30 minutes" in KEPT_NOTE
    assert "written to disk or to the server's logs" in KEPT_NOTE


def test_forget_drops_this_visitors_results_at_once_and_nobody_elses(served: ServedApp) -> None:
    mine, theirs = served.client(), served.client()
    run_two_tasks(mine)
    run_two_tasks(theirs)
    assert kept(served, mine.session_hash) == list(TASKS)
    assert mine.session_hash in served.demo.state_holder.session_data  # Gradio's copy of the page's values

    assert mine.predict(api_name="/forget") == FORGOTTEN_MESSAGE

    assert kept(served, mine.session_hash) == []
    assert mine.session_hash not in served.demo.state_holder.session_data
    assert kept(served, theirs.session_hash) == list(TASKS)
    # the visitor carries on: a new run is kept again
    mine.predict("Another film.", api_name="/classify")
    assert kept(served, mine.session_hash) == ["sentiment"]


@pytest.mark.browser
def test_the_page_shows_the_note_and_forget_empties_the_store_and_the_page(served: ServedApp, browser: Any) -> None:
    page = browser.new_page()
    try:
        page.goto(served.url, wait_until="load")
        page.get_by_role("tab").first.wait_for(timeout=30_000)
        assert "What this server keeps about you" in page.locator("#kept-note").inner_text()
        page.get_by_role("tab", name="Sentiment").click()
        page.locator("#sent-text textarea").fill("A warm, funny film.")
        page.locator("#sent-run").click()
        page.wait_for_function("() => (document.querySelector('#sent-json')?.innerText || '').includes('label')",
                               timeout=30_000)
        sessions = [key for key in served.store._entries if key[1] == "sentiment"]
        assert sessions, "the run was kept"
        session = sessions[-1][0]
        page.locator("#forget").click()
        page.wait_for_url("**?forgotten=1", timeout=30_000)
        page.get_by_text(FORGOTTEN_MESSAGE).wait_for(timeout=30_000)
        assert served.store.get(session, "sentiment") is None
        assert session not in served.demo.state_holder.session_data
        page.get_by_role("tab", name="Sentiment").click()  # a new, empty page: the answer is gone from it too
        assert "label" not in page.locator("#sent-json").inner_text(timeout=10_000)
    finally:
        page.close()


def test_an_empty_store_is_still_the_one_the_tabs_use() -> None:
    import app
    from demos.store import DEFAULT_STORE, ResultStore
    from service import ModelService

    store = ResultStore(max_bytes=2**20)
    assert store and store is not DEFAULT_STORE
    demo = app.build_app(ModelService(profile="tiny"), store)
    handlers = [getattr(fn.fn, "__wrapped__", fn.fn) for fn in demo.fns.values() if fn.fn is not None]  # past i18n
    closures = [cell.cell_contents for handler in handlers for cell in (getattr(handler, "__closure__", None) or ())]
    assert store in closures and DEFAULT_STORE not in closures
