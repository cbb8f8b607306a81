"""The public API through gradio_client on the tiny profile: shapes of the four endpoints, clear errors, no crash."""

from __future__ import annotations

import json
import math
import urllib.request

import pytest
from gradio_client.exceptions import AppError

from service import limits

GENERATE_OK = ("The cat sat on the", 6, 0.0, 0, 1.0, 0)


def post_raw(url: str, api_name: str, body: str) -> str:
    """POST a hand-written JSON body (e.g. with NaN, which gradio_client refuses to send) and read the result."""
    request = urllib.request.Request(f"{url}/gradio_api/call/{api_name}", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{api_name}/{event_id}", timeout=60) as response:
        return response.read().decode()


def test_public_api_is_the_task_endpoints_explain_forget_and_the_insight_endpoints(tiny_client) -> None:
    api = tiny_client.view_api(print_info=False, return_format="dict")
    named = set(api["named_endpoints"])
    assert {"/generate", "/answer", "/translate", "/classify"} <= named
    insight = {"/segment_attention", "/compare_shots", "/next_tokens", "/logit_lens", "/head_roles"}
    assert named <= {"/generate", "/answer", "/translate", "/classify", "/explain", "/forget"} | insight
    assert not api["unnamed_endpoints"], "UI-only events (layer/head switches) must not be in the public API"


def test_generate_returns_text_json(tiny_client) -> None:
    prediction, shown = tiny_client.predict(*GENERATE_OK, api_name="/generate")
    assert set(prediction) >= {"text"} and isinstance(prediction["text"], str)
    assert shown == prediction["text"]


def test_generate_is_deterministic_for_a_seed(tiny_client) -> None:
    arguments = ("Once upon a time", 8, 0.9, 20, 0.9, 1234)
    first, _ = tiny_client.predict(*arguments, api_name="/generate")
    second, _ = tiny_client.predict(*arguments, api_name="/generate")
    assert first["text"] == second["text"]


def test_generate_streams_partial_text_before_the_end(tiny_client) -> None:
    job = tiny_client.submit("The weather today", 12, 0.0, 0, 1.0, 0, api_name="/generate")
    final = job.result(timeout=120)
    texts = [output[0]["text"] for output in job.outputs()]
    assert len(texts) >= 2, f"expected streamed updates, got {texts}"
    assert texts[-1] == final[0]["text"]
    assert all(final[0]["text"].startswith(text.rstrip()) for text in texts[:-1])


def test_answer_returns_a_span_of_the_context(tiny_client) -> None:
    context = "量子计算是一种利用量子力学原理进行信息处理的计算方式。"
    prediction, shown = tiny_client.predict(context, "什么是量子计算？", api_name="/answer")
    assert set(prediction) >= {"answer", "start", "end", "score"}
    assert isinstance(prediction["start"], int) and isinstance(prediction["end"], int)
    assert context[prediction["start"]:prediction["end"]] == prediction["answer"]
    assert isinstance(prediction["score"], float) and math.isfinite(prediction["score"])
    assert "<mark>" in shown


@pytest.mark.parametrize(("text", "direction", "expected"), [
    ("Today is a beautiful day.", "en-zh", "en-zh"),
    ("今天天气很好，我想去公园散步。", "auto", "zh-en"),
])
def test_translate_reports_the_direction(tiny_client, text: str, direction: str, expected: str) -> None:
    prediction, shown = tiny_client.predict(text, direction, api_name="/translate")
    assert isinstance(prediction["translation"], str)
    assert prediction["direction"] == expected
    assert shown == prediction["translation"]


def test_classify_returns_label_and_probability(tiny_client) -> None:
    prediction, shown = tiny_client.predict("这部电影非常感人，我忍不住哭了。", api_name="/classify")
    assert prediction["label"] in ("positive", "negative")
    assert 0.0 <= prediction["score"] <= 1.0
    assert shown["label"] == prediction["label"]


@pytest.mark.parametrize(("arguments", "api_name", "message"), [
    (("", 5, 0.0, 0, 1.0, 0), "/generate", "prompt is empty"),
    (("   \n ", 5, 0.0, 0, 1.0, 0), "/generate", "prompt is empty"),
    (("x" * (limits.MAX_INPUT_CHARS + 1), 5, 0.0, 0, 1.0, 0), "/generate", "limit is"),
    (("hi", limits.MAX_NEW_TOKENS + 1, 0.0, 0, 1.0, 0), "/generate", "max_new_tokens must be in [1, 200]"),
    (("hi", 5, 9.0, 0, 1.0, 0), "/generate", "temperature must be in [0, 2]"),
    (("hi", 5, 0.0, -3, 1.0, 0), "/generate", "top_k must be in"),
    (("hi", 5, 0.0, 0, 0.0, 0), "/generate", "top_p must be in (0, 1]"),
    (("hi", 5, 0.0, 0, 1.0, -1), "/generate", "seed must be in"),
    (("hi", 5.5, 0.0, 0, 1.0, 0), "/generate", "whole number"),
    (("hi", "7", 0.0, 0, 1.0, 0), "/generate", "max_new_tokens must be a whole number"),
    (("hi", 5, None, 0, 1.0, 0), "/generate", "temperature must be a number"),
    ((None, 5, 0.0, 0, 1.0, 0), "/generate", "prompt must be text"),
    (("", "What?"), "/answer", "context is empty"),
    (("Some context.", ""), "/answer", "question is empty"),
    (("c" * (limits.MAX_CONTEXT_CHARS + 1), "What?"), "/answer", "limit is"),
    (("Hello", "fr-de"), "/translate", "choose one of: auto, en-zh, zh-en"),
    (("Hello", None), "/translate", "choose one of"),
    (("",  "auto"), "/translate", "empty"),
    ((" ",), "/classify", "empty"),
    (("y" * (limits.MAX_INPUT_CHARS + 1),), "/classify", "limit is"),
])
def test_bad_input_gets_a_clear_error(tiny_client, arguments, api_name: str, message: str) -> None:
    with pytest.raises(AppError) as raised:
        tiny_client.predict(*arguments, api_name=api_name)
    assert message.lower() in str(raised.value).lower()


def test_non_finite_numbers_are_refused(tiny_app) -> None:
    for value in ("NaN", "Infinity", "-Infinity"):
        reply = post_raw(tiny_app.url, "generate", f'{{"data": ["hi", 5, {value}, 0, 1.0, 0]}}')
        assert "event: error" in reply, reply[:500]
        assert "temperature must be a finite number" in reply, reply[:500]


def test_server_keeps_answering_after_bad_inputs(tiny_client) -> None:
    for arguments in [("", 5, 0.0, 0, 1.0, 0), ("hi", 10_000, 0.0, 0, 1.0, 0)]:
        with pytest.raises(AppError):
            tiny_client.predict(*arguments, api_name="/generate")
    prediction, _ = tiny_client.predict(*GENERATE_OK, api_name="/generate")
    assert isinstance(prediction["text"], str)
    prediction, _ = tiny_client.predict("Great film!", api_name="/classify")
    assert prediction["label"] in ("positive", "negative")


def test_cancelled_generation_frees_the_model(tiny_client) -> None:
    job = tiny_client.submit("A very long story begins", limits.MAX_NEW_TOKENS, 0.0, 0, 1.0, 0,
                             api_name="/generate")
    job.cancel()
    prediction, _ = tiny_client.predict(*GENERATE_OK, api_name="/generate")
    assert isinstance(prediction["text"], str)
