"""One direction detector for the app, the eval and the tests: mixed-script text goes the way a reader expects; a
translation that is not in its target language is flagged."""

import pytest

from service import ModelService
from service.text import detect_direction, is_cjk_ideograph, is_cjk_wide, wrong_language_notice

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


@pytest.mark.parametrize("translation, direction, flagged", [
    ("今天天气很好，所以我们要去公园。", "zh-en", "mostly Chinese"),     # the 270M model on a long zh→en input
    ("Today is good weather.", "zh-en", None),
    ("Beijing (北京) is the capital.", "zh-en", None),                # a Chinese name inside English is fine
    ("Good morning, how are you?", "en-zh", "no Chinese characters"),   # the input repeated
    ("你好 world", "en-zh", None),
    ("1889", "en-zh", None),                                           # digits are neither
    ("  ", "zh-en", "empty"),
])
def test_a_translation_not_in_its_target_language_is_flagged(translation: str, direction: str, flagged) -> None:
    notice = wrong_language_notice(translation, direction)
    assert (notice is None) == (flagged is None)
    if flagged:
        assert flagged in notice


def test_the_service_adds_the_notice_to_a_translation_in_the_wrong_language(services, monkeypatch) -> None:
    service = services[1]
    real = service.backend.translate

    def copies_its_input(text: str, direction: str, zero_shot: bool = False):
        result = real(text, direction, zero_shot)
        result.prediction["translation"] = text                       # what a small model sometimes does
        return result

    monkeypatch.setattr(service.backend, "translate", copies_its_input)
    flagged = service.translate("今天天气很好。", "auto")
    assert flagged.prediction["direction"] == "zh-en"
    assert any("mostly Chinese, not English" in notice for notice in flagged.notices)
    assert any("no Chinese characters" in notice for notice in service.translate("Good morning.", "en-zh").notices)
    monkeypatch.setattr(service.backend, "translate", lambda text, direction, zero_shot=False: _translated(
        real(text, direction, zero_shot), "早上好。"))
    notices = service.translate("Good morning.", "en-zh").notices
    assert not any("small model" in notice or "empty translation" in notice for notice in notices)


def _translated(result, translation: str):
    result.prediction["translation"] = translation
    return result
