"""The endpoints that look inside the model, through gradio_client on the tiny few-shot profile: documented JSON,
clear errors for bad input, and a server that keeps answering."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from gradio_client.exceptions import AppError


@pytest.fixture(scope="module")
def fewshot_client() -> Iterator[Any]:
    from service import ModelService
    from tests.conftest import InProcessApp

    served = InProcessApp(ModelService(profile="tiny-fewshot", max_attention_tokens=1024))
    yield served.client()
    served.close()


def test_the_insight_endpoints_are_public(fewshot_client) -> None:
    named = set(fewshot_client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/segment_attention", "/compare_shots", "/next_tokens", "/logit_lens", "/head_roles"} <= named


def test_segment_attention_shares_sum_to_one_in_every_layer(fewshot_client) -> None:
    answer = fewshot_client.predict("sentiment", {"text": "I loved this film."}, -1, api_name="/segment_attention")
    segments = answer["segments"]
    names = [segment["name"] for segment in segments]
    assert {"instruction", "demonstration 1", "text", "answer", "first token"} <= set(names)
    for segment in segments:
        assert {"name", "start", "end", "share_by_layer"} <= set(segment)
    for layer in range(len(segments[0]["share_by_layer"])):
        assert sum(segment["share_by_layer"][layer] for segment in segments) == pytest.approx(1.0, abs=1e-4)
    one = fewshot_client.predict("qa", {"context": "Bob lives in Oslo.", "question": "Where?"}, 2,
                                 api_name="/segment_attention")
    assert all(len(segment["share_by_layer"]) == 1 for segment in one["segments"]) and one["layer"] == 2


def test_compare_shots_returns_both_predictions(fewshot_client) -> None:
    answer = fewshot_client.predict("translation", {"text": "I like tea.", "direction": "en-zh"},
                                    api_name="/compare_shots")
    assert set(answer) == {"few_shot", "zero_shot"}
    assert set(answer["few_shot"]) >= {"translation", "direction"} and answer["zero_shot"]["direction"] == "en-zh"


def test_next_tokens_gives_each_step_with_candidates(fewshot_client) -> None:
    answer = fewshot_client.predict("Once upon a time", 5, 0.0, 0, 1.0, 0, 4, api_name="/next_tokens")
    assert isinstance(answer["text"], str) and 1 <= len(answer["steps"]) <= 5
    for step in answer["steps"]:
        assert set(step) == {"token", "candidates", "rank"} and step["rank"] == 0  # greedy
        assert len(step["candidates"]) == 4 and sum(c["p"] for c in step["candidates"]) <= 1 + 1e-6


def test_logit_lens_and_head_roles(fewshot_client) -> None:
    lens = fewshot_client.predict("Attention is all you need.", api_name="/logit_lens")
    assert set(lens) == {"tokens", "layers", "max_diff_vs_model"} and lens["max_diff_vs_model"] < 1e-4
    assert len(lens["layers"]) == 4 and all(len(layer) == len(lens["tokens"]) for layer in lens["layers"])
    roles = fewshot_client.predict(api_name="/head_roles")["heads"]
    assert len(roles) == 16 and set(roles[0]) == {"layer", "head", "role", "scores"}


@pytest.mark.parametrize("api_name, arguments, message", [
    ("/segment_attention", ("poetry", {"text": "x"}, -1), "task"),
    ("/segment_attention", ("qa", {"context": "x"}, -1), "needs question"),
    ("/segment_attention", ("sentiment", {"text": "x"}, 99), "layer"),
    ("/compare_shots", ("generation", {"prompt": "x"}), "task"),
    ("/next_tokens", ("", 5, 0.0, 0, 1.0, 0, 3), "empty"),
    ("/next_tokens", ("hi", 5, 0.0, 0, 1.0, 0, 500), "candidates"),
    ("/logit_lens", ("",), "empty"),
])
def test_bad_input_gets_a_clear_message_and_the_server_keeps_serving(fewshot_client, api_name, arguments,
                                                                     message) -> None:
    with pytest.raises(AppError, match=message):
        fewshot_client.predict(*arguments, api_name=api_name)
    assert fewshot_client.predict(api_name="/head_roles")["heads"]
