"""One direction detector for the app, the eval and the tests: mixed-script text goes the way a reader expects."""

import pytest

from service import ModelService
from service.text import detect_direction, is_cjk_ideograph, is_cjk_wide

DIRECTION_CASES = [
    ("Machine learning is changing the world.", "en-zh"),
    ("机器学习正在改变世界。", "zh-en"),
    ("我用 Python 写代码。", "zh-en"),
    ("我喜欢 Python programming.", "zh-en"),          # a Chinese sentence naming English terms
    ("用 TensorFlow 和 PyTorch", "zh-en"),
    ("The word 你好 means hello in Chinese.", "en-zh"),
    ("I visited 北京 last summer with my family.", "en-zh"),
    ("12345", "en-zh"),
]


@pytest.mark.parametrize("text, direction", DIRECTION_CASES)
def test_detect_direction(text: str, direction: str) -> None:
    assert detect_direction(text) == direction


@pytest.fixture(scope="module")
def services() -> list[ModelService]:
    return [ModelService("tiny"), ModelService("tiny-fewshot")]


@pytest.mark.parametrize("text, direction", DIRECTION_CASES)
def test_translate_auto_takes_the_detected_direction_on_every_backend(services, text: str, direction: str) -> None:
    for service in services:
        assert service.translate(text, "auto").prediction["direction"] == direction


def test_ideographs_and_wide_characters() -> None:
    assert is_cjk_ideograph("中") and is_cjk_ideograph("\U00020000")  # Extension B
    assert not is_cjk_ideograph("。") and is_cjk_wide("。") and is_cjk_wide("，")
    assert not is_cjk_wide("a") and not is_cjk_wide("ab") and not is_cjk_ideograph("")
