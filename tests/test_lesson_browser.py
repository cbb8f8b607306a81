"""The Lesson tab in headless Chromium on the real embedded Gemma: one sentence, all nine steps, each with its
figure and a prediction revealed from the model's numbers; in 中文 no English UI word is left, in English the
steps read in English."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.test_i18n_browser import UI_TEXT_JS, english_words, open_chinese_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_MS = 420_000
STEP_MS = 60_000
FIGURE_STEPS = {1, 2, 3, 4, 5, 6, 7, 8}        # steps (from 0) that draw a figure; step 0 is the token chips


def _walk(page: Any) -> dict[int, str]:
    """Every step in turn: open it, run the model where the step asks, predict the first choice, reveal.
    Returns the revealed answer text per step."""
    answers: dict[int, str] = {}
    steps = page.locator("#lesson-step label")
    assert steps.count() == 9
    for index in range(9):
        steps.nth(index).click()
        page.wait_for_function(
            f"() => document.querySelector('#lesson-prose')?.innerText.trim().startsWith('{index + 1} ·')",
            timeout=STEP_MS)
        if page.locator("#lesson-run").is_visible():
            page.click("#lesson-run")
            page.wait_for_selector("#lesson-figure .main-svg", timeout=RUN_MS)
        if index in FIGURE_STEPS:
            page.wait_for_selector("#lesson-figure .main-svg", timeout=STEP_MS)
        choices = page.locator("#lesson-guess label")
        assert choices.count() >= 2, f"step {index + 1} offers {choices.count()} predictions"
        choices.first.click()
        page.click("#lesson-reveal")
        page.wait_for_function("() => /[✓✗]/.test(document.querySelector('#lesson-answer')?.innerText || '')",
                               timeout=STEP_MS)
        answers[index] = page.locator("#lesson-answer").inner_text()
    return answers


def test_lesson_walks_all_nine_steps_in_chinese(browser: Any, embedded_app: Any) -> None:
    context, page, errors = open_chinese_page(browser, embedded_app.url, "课程")
    page.get_by_role("tab", name="课程", exact=True).click()
    page.locator("#lesson-text textarea").fill("机器学习正在改变世界。")
    page.click("#lesson-start")
    page.wait_for_selector("#lesson-html .atlas-lesson-tokens", timeout=RUN_MS)
    chips = page.locator("#lesson-html .atlas-lesson-tokens").all_inner_texts()
    assert len(chips) == 3 and all("机器" in text or "机" in text for text in chips[:1])
    left: dict[int, set[str]] = {}
    answers = _walk(page)
    for index in range(9):
        page.locator("#lesson-step label").nth(index).click()
        page.wait_for_timeout(900)
        if found := english_words(page.evaluate(UI_TEXT_JS, "lesson")):
            left[index + 1] = found
    assert not left, "\n".join(f"step {step}: {sorted(words)}" for step, words in left.items())
    assert all(re.search(r"[\u4e00-\u9fff]", text) for text in answers.values()), answers
    assert errors == []
    assert "Traceback" not in embedded_app.log_text(), embedded_app.log_text()[-3000:]
    context.close()


def test_lesson_in_english_reveals_answers_measured_on_the_sentence(browser: Any, embedded_app: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    # a shared link opens the Lesson tab on its sentence and starts the lesson
    sentence = "The cat sat on the mat because the cat was tired."
    page.goto(f"{embedded_app.url}?lang=en&" + urlencode({"tab": "lesson", "text": sentence}), timeout=60_000)
    page.wait_for_selector("#lesson-html .atlas-lesson-tokens", timeout=RUN_MS)
    assert page.locator("#lesson-text textarea").input_value() == sentence
    answers = _walk(page)
    assert "Token counts:" in answers[0]
    assert "cosine 1.000" in answers[1]           # "cat" twice: the same row of the table, the same vector
    assert "from layer" in answers[8]
    # a silly input: a clear message, and the tab still works afterwards
    page.locator("#lesson-text textarea").fill("   ")
    page.click("#lesson-start")
    page.wait_for_selector(".toast-body", timeout=STEP_MS)
    assert "empty" in page.locator(".toast-body").first.inner_text().lower()
    context.close()
