"""The zoom control: which block of a long result's attention to show at full resolution (viz/zoom.py).

Positions are cut into blocks of ZOOM_POSITIONS counted back from the last token (so the last block, where the
produced tokens are, is always whole); the menu offers every (query block, key block) pair a query can see.
A value from the page ("start:end|start:end") is used only when it is one of the offered pairs.
"""

from __future__ import annotations

from typing import Any

from service.result import AttentionResult, TokenSide

ZOOM_POSITIONS = 128


def has_zoom(result: AttentionResult) -> bool:
    """Whether the result is long enough for its heatmaps to pool tokens: then a zoom shows full resolution."""
    return len(result.tokens(result.main_side)) > ZOOM_POSITIONS


def blocks(total: int) -> list[tuple[int, int]]:
    """(start, end) blocks of at most ZOOM_POSITIONS positions, the last one ending at `total`, in order."""
    ends = list(range(total, 0, -ZOOM_POSITIONS))
    return [(max(0, end - ZOOM_POSITIONS), end) for end in reversed(ends)]


def zoom_choices(result: AttentionResult, side: TokenSide | None = None) -> list[tuple[str, str]]:
    """(label, value) of every block pair, the default (last queries × last keys) first."""
    side = side or result.main_side
    spans = blocks(len(result.tokens(side)))
    causal = result.is_causal(side)
    pairs = [(rows, keys) for rows in reversed(spans) for keys in reversed(spans) if not causal or keys[0] < rows[1]]
    return [(f"queries {rows[0]}–{rows[1] - 1} × keys {keys[0]}–{keys[1] - 1}", zoom_value((rows, keys)))
            for rows, keys in pairs]


def default_zoom(result: AttentionResult, side: TokenSide | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    last = blocks(len(result.tokens(side or result.main_side)))[-1]
    return last, last


def parse_zoom(value: Any, result: AttentionResult,
               side: TokenSide | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """The block pair `value` names when it is one the menu offers; the default pair otherwise."""
    offered = {choice for _, choice in zoom_choices(result, side)}
    if not isinstance(value, str) or value not in offered:
        return default_zoom(result, side)
    rows, keys = (tuple(int(part) for part in span.split(":")) for span in value.split("|"))
    return (rows[0], rows[1]), (keys[0], keys[1])


def zoom_value(zoom: tuple[tuple[int, int], tuple[int, int]]) -> str:
    (row_start, row_end), (key_start, key_end) = zoom
    return f"{row_start}:{row_end}|{key_start}:{key_end}"
