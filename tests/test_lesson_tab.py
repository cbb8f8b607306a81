"""The Lesson tab's steps and answers on the tiny few-shot profile: every step shows its figure from the kept run,
every reveal is measured on the sentence, bad values from the page are refused, and an expired run says so."""

from __future__ import annotations

import math
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from demos import lesson
from demos.lesson import STEP_KEYS
from demos.lesson_text import STEPS
from demos.store import ResultStore, result_bytes


def _request(session: str = "lesson-test") -> SimpleNamespace:
    return SimpleNamespace(session_hash=session, headers={}, query_params={})


@pytest.fixture(scope="module")
def service():
    from service import ModelService

    return ModelService(profile="tiny-fewshot")


@pytest.fixture(scope="module")
def kept(service):
    store = ResultStore()
    request = _request()
    run = lesson.start_lesson(service, store, "The cat sat on the mat and the cat slept.", request, lambda *a, **k: None)
    for index, step in enumerate(STEPS):
        if step.key in ("fewshot", "generation"):
            run = lesson.run_step_model(service, store, index, request, lambda *a, **k: None)
    return store, request, run


def test_before_the_start_every_step_has_its_text_and_asks_for_a_sentence() -> None:
    for index in range(len(STEPS)):
        view = lesson.step_view(None, index, "en")
        assert view.prose.startswith(f"### {index + 1} ·")
        assert view.figure is None and "Start the lesson" in view.html
        assert lesson.reveal(None, index, "no", "en").startswith("Type a sentence")


def test_every_step_draws_from_the_kept_run(kept) -> None:
    _store, _request_, run = kept
    for index, step in enumerate(STEPS):
        view = lesson.step_view(run, index, "en")
        if step.key == "tokens":
            assert view.html.count("atlas-lesson-tokens") == 3
        else:
            assert view.figure is not None, step.key
        assert len(view.choices) >= 2, step.key
    assert lesson.step_view(run, 8, "en").generation_steps >= 1


def test_each_reveal_says_right_or_wrong_from_the_numbers(kept) -> None:
    _store, _request_, run = kept
    for index, step in enumerate(STEPS):
        choices = [value for _label, value in lesson.step_view(run, index, "en").choices]
        verdicts = [lesson.reveal(run, index, value, "en") for value in choices]
        assert all(text.startswith(("**✓", "**✗")) for text in verdicts), verdicts
        assert sum(text.startswith("**✓") for text in verdicts) >= 1, (step.key, verdicts)  # some choice is right
    assert lesson.reveal(run, 1, "no", "en").startswith("**✓")        # an embedding is a table lookup
    assert lesson.reveal(run, 3, "rise", "en").startswith("**✓")      # a lower temperature sharpens
    top = int(np.argmax(run.explain.model_row))
    assert lesson.reveal(run, 2, str(top), "en").startswith("**✓")
    assert lesson.reveal(run, 6, "encoder", "en").startswith("**✓")   # only the encoder sees forward
    assert "cosine 1.000" in lesson.reveal(run, 1, "no", "en")        # "cat" twice: the same vector


def test_answers_come_in_chinese_for_a_chinese_page(kept) -> None:
    _store, _request_, run = kept
    text = lesson.reveal(run, 5, "ffn", "zh")
    assert "前馈网络" in text and ("✓" in text or "✗" in text)
    assert "先猜一猜" in lesson.step_view(run, 0, "zh").question


def test_a_guess_is_needed_before_the_reveal(kept) -> None:
    assert lesson.reveal(kept[2], 0, None, "en") == "Pick a prediction first, then reveal."


def test_the_store_counts_the_lesson_and_an_expired_one_says_start_again(kept) -> None:
    store, request, run = kept
    assert result_bytes(run) >= run.lesson.decoder_attention.nbytes + run.generated.decoder_attention.nbytes
    with pytest.raises(gr.Error, match="Start the lesson"):
        lesson.kept_run(store, _request("someone-else"))


@pytest.mark.parametrize("value", ["x", None, 9, -1, 1.5, math.nan])
def test_a_step_outside_the_lesson_is_refused(value) -> None:
    with pytest.raises(gr.Error, match="step of the lesson"):
        lesson._step_index(value)


@pytest.mark.parametrize("value", ["hot", math.nan, 0.0, 99])
def test_a_temperature_outside_the_slider_is_refused(value) -> None:
    with pytest.raises(gr.Error, match="temperature"):
        lesson._temperature(value)


def test_softmax_with_temperature_keeps_the_order_and_sums_to_one() -> None:
    from viz.lesson import softmax_with_temperature

    scores = np.array([2.0, 1.0, -np.inf, 0.5])
    for temperature in (0.1, 1.0, 3.0):
        weights = softmax_with_temperature(scores, temperature)
        assert weights.sum() == pytest.approx(1.0) and weights[2] == 0.0
        assert list(np.argsort(-weights[[0, 1, 3]])) == [0, 1, 2]
    assert softmax_with_temperature(scores, 0.5)[0] > softmax_with_temperature(scores, 1.0)[0]


def test_a_link_opens_the_lesson_on_its_sentence_and_starts_it() -> None:
    from demos.links import parse_link

    link = parse_link({"tab": "lesson", "text": "机器学习正在改变世界。", "layer": "3"})
    assert link.tab == "lesson" and link.inputs == {"text": "机器学习正在改变世界。"} and link.runs
    assert link.layer is None and not link.problems           # the lesson has no layer control: ignored
    assert parse_link({"tab": "lesson", "text": "x" * 5000}).problems  # too long: a message, the default stands


def test_a_profile_with_an_encoder_decoder_shows_its_real_cross_attention() -> None:
    from service import ModelService

    tiny = ModelService(profile="tiny")                       # specialists: tiny Marian translates
    run = lesson.start_lesson(tiny, ResultStore(), "The cat sat on the mat.", _request("marian"), lambda *a, **k: None)
    view = lesson.step_view(run, STEP_KEYS.index("architectures"), "en")
    assert view.third_figure is not None and "cross-attention" in view.third_figure.layout.title.text
    assert run.translated.model_name in view.html and "real cross-attention" in view.html
