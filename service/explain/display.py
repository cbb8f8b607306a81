"""Display tokens for the walk-through, remembered per tokenizer (the same text is explained for every switch)."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

_DISPLAY_CACHE: "weakref.WeakKeyDictionary[Any, OrderedDict[tuple[int, ...], tuple[list[str], list[bool]]]]" = (
    weakref.WeakKeyDictionary())
_DISPLAY_CACHE_SIZE = 32
_DISPLAY_LOCK = threading.Lock()


def display(tokenizer: Any, ids: list[int]) -> tuple[list[str], list[bool]]:
    """(labels, special flags) for `ids`. Building labels for Gemma's 262k-token tokenizer takes seconds
    (the token display helper serialises it), so answers are kept, 32 texts per tokenizer."""
    key = tuple(ids)
    try:
        per_tokenizer = _DISPLAY_CACHE.setdefault(tokenizer, OrderedDict())
    except TypeError:  # not weak-referenceable: no cache
        return _display_uncached(tokenizer, ids)
    with _DISPLAY_LOCK:
        if key in per_tokenizer:
            per_tokenizer.move_to_end(key)
            labels, special = per_tokenizer[key]
            return list(labels), list(special)
    labels, special = _display_uncached(tokenizer, ids)
    with _DISPLAY_LOCK:
        per_tokenizer[key] = (list(labels), list(special))
        while len(per_tokenizer) > _DISPLAY_CACHE_SIZE:
            per_tokenizer.popitem(last=False)
    return labels, special


def _display_tokens() -> Any:
    """service.attention.tokens.display_tokens, imported on first use."""
    from service.attention.tokens import display_tokens

    return display_tokens


def _display_uncached(tokenizer: Any, ids: list[int]) -> tuple[list[str], list[bool]]:
    return _display_tokens()(tokenizer, ids)
