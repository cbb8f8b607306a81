"""Validation of user input with typed, actionable errors; the app reuses these checks."""

from __future__ import annotations

import math
import numbers
from typing import Any

from service import limits
from service.errors import InvalidInputError, UnsupportedError


def check_text(value: Any, field: str = "text", max_chars: int = limits.MAX_INPUT_CHARS) -> str:
    """Return `value` unchanged if it is a non-blank string of at most `max_chars` characters."""
    if not isinstance(value, str):
        raise InvalidInputError(f"The {field} must be text, not {type(value).__name__}.")
    if not value.strip():
        raise InvalidInputError(f"The {field} is empty. Type some text and try again.")
    if len(value) > max_chars:
        raise InvalidInputError(
            f"The {field} is {len(value)} characters long; the limit is {max_chars}. Shorten it and try again."
        )
    return value


def _short(value: Any, limit: int = 40) -> str:
    """A repr for error messages that stays short (a 1 MB string or a 5,000-digit int must not be echoed back)."""
    try:
        text = repr(value)
    except ValueError:  # int too large to print
        return "a number too large"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_number(
    value: Any,
    field: str,
    low: float,
    high: float,
    *,
    integer: bool = False,
    low_open: bool = False,
) -> float | int:
    """Return `value` as a float (or int) inside [low, high] (or (low, high] with `low_open`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "a whole number" if integer else "a number"
        raise InvalidInputError(f"{field} must be {kind}, not {_short(value)}.")
    opening = "(" if low_open else "["
    low_text = f"{low:g}" if not integer else str(int(low))
    high_text = f"{high:g}" if not integer else str(int(high))
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise InvalidInputError(f"{field} must be in {opening}{low_text}, {high_text}], got a number too large.") from None
    if math.isnan(number) or math.isinf(number):
        raise InvalidInputError(f"{field} must be a finite number, not {_short(value)}.")
    if integer and not number.is_integer():
        raise InvalidInputError(f"{field} must be a whole number, not {_short(value)}.")
    too_low = number <= low if low_open else number < low
    if too_low or number > high:
        raise InvalidInputError(f"{field} must be in {opening}{low_text}, {high_text}], got {_short(value)}.")
    return int(number) if integer else number


def check_sampling(
    max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any, seed: Any
) -> tuple[int, float, int, float, int]:
    """Validate the generation settings; returns them normalised (ints and floats)."""
    return (
        int(check_number(max_new_tokens, "max_new_tokens", 1, limits.MAX_NEW_TOKENS, integer=True)),
        float(check_number(temperature, "temperature", *limits.TEMPERATURE_RANGE)),
        int(check_number(top_k, "top_k", *limits.TOP_K_RANGE, integer=True)),
        float(check_number(top_p, "top_p", *limits.TOP_P_RANGE, low_open=True)),
        int(check_number(seed, "seed", *limits.SEED_RANGE, integer=True)),
    )


def check_choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    """Return `value` if it is one of `choices`, else raise UnsupportedError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise UnsupportedError(f"Unsupported {field} {_short(value)}; choose one of: {', '.join(choices)}.")
    return value


def check_task(task: Any) -> str:
    return check_choice(task, "task", limits.TASKS)


def check_direction(direction: Any) -> str:
    if isinstance(direction, str):
        direction = direction.strip().lower().replace("_", "-").replace("→", "-")
    return check_choice(direction, "translation direction", limits.DIRECTIONS)


def check_index(value: Any, field: str, size: int) -> int:
    """A layer/head/position index in [0, size)."""
    if size <= 0:
        raise InvalidInputError(f"There is no {field} to choose from.")
    return int(check_number(value, field, 0, size - 1, integer=True))


def check_fields(inputs: Any, required: tuple[str, ...], optional: tuple[str, ...], task: str) -> dict[str, Any]:
    """A copy of `inputs` (a dict) holding every required field and only known ones, else a clear error."""
    if not isinstance(inputs, dict):
        raise InvalidInputError(f"The inputs of {task} must be an object with the fields {', '.join(required)}.")
    unknown = sorted(str(name) for name in inputs if name not in required + optional)
    if unknown:
        raise InvalidInputError(f"{task} has no input named {_short(unknown[0])}; it takes "
                                f"{', '.join(required + optional)}.")
    missing = [name for name in required if name not in inputs]
    if missing:
        raise InvalidInputError(f"{task} needs {', '.join(missing)}: add {'it' if len(missing) == 1 else 'them'} "
                                "to the inputs.")
    return dict(inputs)
