"""Bad input gives a typed AtlasError with a sentence a user can act on, never a raw traceback."""

from __future__ import annotations

import math

import pytest
import torch

from service import AtlasError, InvalidInputError, ModelService, UnsupportedError, limits, validation


@pytest.fixture(scope="module")
def tiny() -> ModelService:
    return ModelService("tiny")


@pytest.mark.parametrize("blank", ["", "   ", "\n\t "])
@pytest.mark.parametrize("task", ["generate", "classify", "translate", "answer-context", "answer-question"])
def test_empty_or_blank_input_is_rejected(tiny: ModelService, task: str, blank: str) -> None:
    calls = {
        "generate": lambda: tiny.generate(blank),
        "classify": lambda: tiny.classify(blank),
        "translate": lambda: tiny.translate(blank),
        "answer-context": lambda: tiny.answer(blank, "Who?"),
        "answer-question": lambda: tiny.answer("Some context.", blank),
    }
    with pytest.raises(InvalidInputError, match="empty"):
        calls[task]()


def test_over_long_input_names_the_limit(tiny: ModelService) -> None:
    with pytest.raises(InvalidInputError, match=str(limits.MAX_INPUT_CHARS)):
        tiny.classify("a" * (limits.MAX_INPUT_CHARS + 1))
    with pytest.raises(InvalidInputError, match=str(limits.MAX_CONTEXT_CHARS)):
        tiny.answer("a" * (limits.MAX_CONTEXT_CHARS + 1), "Who?")


def test_prompt_longer_than_the_model_context_is_rejected(tiny: ModelService) -> None:
    with pytest.raises(InvalidInputError, match="reads at most 1024 tokens"):
        tiny.generate("机器学习" * 450, max_new_tokens=10)  # ~5 byte tokens per character


def test_non_text_input_is_rejected(tiny: ModelService) -> None:
    with pytest.raises(InvalidInputError, match="must be text"):
        tiny.classify(None)  # type: ignore[arg-type]


def test_unsupported_direction_lists_the_choices(tiny: ModelService) -> None:
    with pytest.raises(UnsupportedError, match="en-zh, zh-en"):
        tiny.translate("Hello", direction="en-fr")


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 1001}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": limits.MAX_NEW_TOKENS + 1}, "max_new_tokens"),
        ({"max_new_tokens": "5"}, "max_new_tokens"),
        ({"max_new_tokens": True}, "max_new_tokens"),
        ({"temperature": None}, "temperature"),
    ],
)
def test_bad_generation_numbers_are_rejected_with_the_field_name(tiny: ModelService, settings: dict, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        tiny.generate("Hello", **settings)
    with pytest.raises(InvalidInputError, match=field):
        tiny.stream_generate("Hello", **settings)  # checked at call time, before any token is generated


def test_boundary_numbers_are_accepted() -> None:
    assert validation.check_sampling(limits.MAX_NEW_TOKENS, 2.0, 1000, 1.0, 2**31 - 1) == (
        limits.MAX_NEW_TOKENS, 2.0, 1000, 1.0, 2**31 - 1,
    )
    assert validation.check_sampling(1.0, 0, 0, 1e-6, 0)[0] == 1  # a whole float is a whole number


def test_unknown_profile_task_and_device_are_unsupported() -> None:
    with pytest.raises(UnsupportedError, match="profile"):
        ModelService("huge")
    with pytest.raises(UnsupportedError, match="task"):
        ModelService("tiny").load("summarisation")
    with pytest.raises(UnsupportedError, match="device"):
        ModelService("tiny", device="tpu")
    with pytest.raises(InvalidInputError, match="max_attention_tokens"):
        ModelService("tiny", max_attention_tokens=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_a_gpu_says_what_to_do() -> None:
    with pytest.raises(UnsupportedError, match="--device cpu"):
        ModelService("tiny", device="cuda")


def test_auto_device_falls_back_to_cpu_without_a_gpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert ModelService("tiny", device="auto").device == expected


def test_explain_rejects_a_model_the_profile_does_not_offer(tiny: ModelService) -> None:
    assert tiny.explain_models() == ["default"]
    with pytest.raises(UnsupportedError, match="default"):
        tiny.explain("Hello there", 0, 0, 0, model="minilm")


@pytest.mark.parametrize(
    "call",
    [
        lambda: validation.check_text("", "prompt"),
        lambda: validation.check_text("x" * 5, "prompt", max_chars=4),
        lambda: validation.check_number(float("nan"), "temperature", 0, 2),
        lambda: validation.check_number(3, "top_p", 0, 1, low_open=True),
        lambda: validation.check_direction("fr-en"),
        lambda: validation.check_index(7, "layer", 6),
    ],
)
def test_every_error_is_one_readable_sentence(call) -> None:
    with pytest.raises(AtlasError) as caught:
        call()
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
