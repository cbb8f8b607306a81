"""Script facts about user text, in one place: which characters are CJK, and which way a translation goes."""

from __future__ import annotations

Direction = str  # "en-zh" | "zh-en"


def is_cjk_ideograph(char: str) -> bool:
    """True for one Han character: CJK Unified Ideographs, Extension A, compatibility ideographs, Extensions B–F."""
    if len(char) != 1:
        return False
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x2FA1F)


def is_cjk_wide(char: str) -> bool:
    """True for a character written without spaces around it in CJK text: an ideograph, a radical, CJK punctuation
    (、。「」), kana, or a full-width form (，！？)."""
    if len(char) != 1:
        return False
    code = ord(char)
    return is_cjk_ideograph(char) or 0x2E80 <= code <= 0x9FFF or 0xFF00 <= code <= 0xFFEF


def detect_direction(text: str) -> Direction:
    """"zh-en" when the text has at least as many Han characters as Latin words, else "en-zh".

    Counting Han characters against Latin *words* (not letters) keeps a Chinese sentence that names English terms
    Chinese: "我喜欢 Python programming." → zh-en, "I visited 北京 last summer." → en-zh.
    """
    ideographs = sum(1 for char in text if is_cjk_ideograph(char))
    if ideographs == 0:
        return "en-zh"
    latin_words = 0
    in_word = False
    for char in text:
        is_latin = char.isascii() and char.isalpha()
        if is_latin and not in_word:
            latin_words += 1
        in_word = is_latin
    return "zh-en" if ideographs >= latin_words else "en-zh"


def wrong_language_notice(translation: str, direction: Direction) -> str | None:
    """A notice when a translation is not in its target language (a small model sometimes repeats or continues its
    input instead of translating it), or is empty; None when it looks right. Into English: mostly Han characters
    (detect_direction would read it as Chinese). Into Chinese: Latin letters and not one Han character."""
    text = translation.strip()
    if not text:
        return "The model gave an empty translation."
    has_ideographs = any(is_cjk_ideograph(char) for char in text)
    if direction == "zh-en" and has_ideographs and detect_direction(text) == "zh-en":
        return ("The translation is mostly Chinese, not English: a small model sometimes repeats or continues its "
                "input instead of translating it.")
    if direction == "en-zh" and not has_ideographs and any(char.isascii() and char.isalpha() for char in text):
        return ("The translation has no Chinese characters: a small model sometimes repeats or continues its input "
                "instead of translating it.")
    return None
