"""The app's public API endpoints: a valid call for each, and checks that an answer is correct (not just present)."""

from __future__ import annotations

import json
from typing import Any

# api_name -> arguments of a valid, quick request (tiny profile).
VALID_CALLS: dict[str, tuple[Any, ...]] = {
    "/generate": ("The cat sat on the", 5, 0.0, 0, 1.0, 0),
    "/answer": ("Marie Curie won two Nobel prizes, in physics and chemistry.", "How many Nobel prizes did she win?"),
    "/translate": ("The weather is nice today.", "en-zh"),
    "/classify": ("I loved this film, it was wonderful.",),
    "/explain": ("The quick brown fox jumps over the lazy dog.", 0, 0, 1),
}
ENDPOINTS = tuple(VALID_CALLS)

# api_name -> the kind of each parameter, in order: "text", "int", "float" or "choice:<a>|<b>".
PARAMETER_KINDS: dict[str, tuple[str, ...]] = {
    "/generate": ("text", "int", "float", "int", "float", "int"),
    "/answer": ("text", "text"),
    "/translate": ("text", "choice:auto|en-zh|zh-en"),
    "/classify": ("text",),
    "/explain": ("text", "int", "int", "int"),
}


def with_text(api_name: str, text: str) -> tuple[Any, ...]:
    """The endpoint's valid call with every free-text argument replaced by `text`."""
    arguments = list(VALID_CALLS[api_name])
    if api_name == "/answer":
        return (text, text)
    arguments[0] = text
    return tuple(arguments)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def first_dict(value: Any) -> dict[str, Any]:
    """The first JSON object among an endpoint's outputs (the prediction)."""
    outputs = value if isinstance(value, (list, tuple)) else [value]
    for output in outputs:
        found = _as_dict(output)
        if found:
            return found
    return {}


def answer_problem(api_name: str, arguments: tuple[Any, ...], value: Any) -> str | None:
    """Why `value` is not a correct answer to `arguments` on `api_name` (None when it is correct)."""
    prediction = first_dict(value)
    if not prediction:
        return f"{api_name} answered without a JSON prediction: {str(value)[:300]}"
    if api_name == "/generate":
        if not isinstance(prediction.get("text"), str):
            return f"/generate prediction has no text: {prediction}"
    elif api_name == "/answer":
        # A Textbox hands the handler str(payload), so a number sent as the context is answered as its text.
        context = "" if arguments[0] is None else str(arguments[0])
        answer, start, end = prediction.get("answer"), prediction.get("start"), prediction.get("end")
        if not isinstance(answer, str) or not isinstance(start, int) or not isinstance(end, int):
            return f"/answer prediction lacks answer/start/end: {prediction}"
        if context[start:end] != answer:
            return f"/answer span {start}:{end} is {context[start:end]!r}, not the answer {answer!r}"
    elif api_name == "/translate":
        if not isinstance(prediction.get("translation"), str) or prediction.get("direction") not in ("en-zh", "zh-en"):
            return f"/translate prediction lacks translation/direction: {prediction}"
    elif api_name == "/classify":
        score = prediction.get("score")
        if prediction.get("label") not in ("positive", "negative"):
            return f"/classify label is {prediction.get('label')!r}"
        if not isinstance(score, (int, float)) or not 0.0 <= float(score) <= 1.0:
            return f"/classify score {score!r} is not in [0, 1]"
    return None
