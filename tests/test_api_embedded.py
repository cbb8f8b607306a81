"""The public API on the real embedded Gemma (slow): the issue's examples get sensible answers through gradio_client."""

from __future__ import annotations

import re

import pytest
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.slow

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def client(embedded_app):
    from gradio_client import Client

    return Client(embedded_app.url, verbose=False)


def test_generate_continues_a_chinese_prompt(client) -> None:
    prediction, shown = client.predict("今天天气很好，我想去公园散步。", 10, 0.0, 0, 1.0, 0, api_name="/generate")
    assert prediction["text"].strip() and shown == prediction["text"]


def test_answer_is_a_span_of_the_context(client) -> None:
    context = "量子计算是一种利用量子力学原理进行信息处理的计算方式。"
    prediction, _ = client.predict(context, "什么是量子计算？", api_name="/answer")
    assert prediction["answer"] and context[prediction["start"]:prediction["end"]] == prediction["answer"]
    assert 0.0 <= prediction["score"] <= 1.0


def test_translate_english_into_chinese(client) -> None:
    prediction, _ = client.predict("Today is a beautiful day.", "auto", api_name="/translate")
    assert prediction["direction"] == "en-zh"
    assert CJK.search(prediction["translation"]), prediction


def test_classify_a_moving_film_review_as_positive(client) -> None:
    prediction, _ = client.predict("这部电影非常感人，我忍不住哭了。", api_name="/classify")
    assert prediction["label"] == "positive" and 0.5 <= prediction["score"] <= 1.0


def test_bad_input_on_the_real_model_is_refused_and_the_server_keeps_answering(client) -> None:
    with pytest.raises(AppError, match="empty"):
        client.predict("   ", api_name="/classify")
    prediction, _ = client.predict("The food was cold and the service was terribly slow.", api_name="/classify")
    assert prediction["label"] == "negative"
