"""Where the produced tokens' attention went: shares per segment and the answer-focus matrix, from a kept result.

The rows are the attention that produced each output token (segments with role "output": the generated text, the
answer, the translation, the QA answer span, the classifier token). A decoder predicts the NEXT token, so the row
that chose output token t is the one at position t - 1 (the label " positive" was chosen at "Sentiment:"); an
encoder reads its answer from the output tokens' own rows (the answer span, the classifier token). Every key
position belongs to exactly one column or segment, so shares of one row sum to 1 (rows whose earlier tokens were
cut off for the attention cap keep the missing weight as "hidden earlier tokens").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.result import AttentionResult, Segment, TokenSide

HIDDEN = "hidden earlier tokens"
OTHER = "other tokens"


@dataclass
class SegmentShare:
    """One segment's share of the produced tokens' attention, per layer (mean over heads, or one head)."""

    name: str
    role: str
    spans: list[tuple[int, int]]          # token ranges (start, end) on the side; one name may cover several
    share_by_layer: list[float]

    def to_dict(self) -> dict[str, object]:
        start, end = self.spans[0][0] if self.spans else -1, self.spans[-1][1] if self.spans else -1
        return {"name": self.name, "role": self.role, "start": start, "end": end,
                "spans": [list(span) for span in self.spans], "share_by_layer": self.share_by_layer}


@dataclass
class FocusColumn:
    """A column of the answer focus: one user/answer token, or a whole collapsed segment."""

    label: str
    positions: list[int]
    role: str
    collapsed: bool
    text: str = ""                       # the collapsed segment's tokens, for the hover


@dataclass
class AnswerFocus:
    """(head, produced token, column) attention of one layer: rows at full resolution, scaffold collapsed."""

    side: TokenSide
    layer: int
    rows: list[int]                           # attention rows: the positions that chose each produced token
    produced: list[int]                       # the produced tokens, one per row (a decoder's row is one before it)
    row_labels: list[str]                     # the produced tokens' display text
    columns: list[FocusColumn]
    weights: np.ndarray = field(repr=False)   # (head, row, column)


def focus_side(result: AttentionResult) -> TokenSide:
    """The side whose self-attention holds the produced tokens: decoder when it exists, else encoder."""
    return result.main_side


def produced_positions(result: AttentionResult, side: TokenSide | None = None) -> list[int]:
    """Token positions of the output-role segments on `side` (the tokens the model produced)."""
    side = side or focus_side(result)
    return [position for segment in _side_segments(result, side) if segment.role == "output"
            for position in range(segment.start, segment.end)]


def deciding_rows(result: AttentionResult, side: TokenSide | None = None) -> tuple[list[int], list[int]]:
    """(attention rows, produced positions): the row whose attention chose each produced token. Causal (decoder)
    side: the position just before it (a decoder's row predicts the next token); encoder: the token's own row.
    A produced token at position 0 (a kept window that starts on it) has no row before it and is left out."""
    side = side or focus_side(result)
    produced = produced_positions(result, side)
    if not result.is_causal(side):
        return produced, produced
    pairs = [(position - 1, position) for position in produced if position > 0]
    return [row for row, _ in pairs], [position for _, position in pairs]


def segment_shares(result: AttentionResult, head: int | None = None,
                   side: TokenSide | None = None) -> list[SegmentShare]:
    """Share of the produced tokens' attention on each segment, in every layer (mean over rows; heads averaged
    unless `head` is given). Segments with the same name are counted together. Shares of a layer sum to 1."""
    side = side or focus_side(result)
    rows, _ = deciding_rows(result, side)
    if not rows:
        raise ValueError(f"this {result.task} result has no produced tokens on the {side} side")
    attention = result.self_attention(side)                       # (layer, head, query_pos, key_pos)
    picked = attention[:, :, rows, :] if head is None else attention[:, head:head + 1, rows, :]
    per_key = picked.astype(np.float64).mean(axis=(1, 2))          # (layer, key_pos)
    shares: dict[str, SegmentShare] = {}
    covered = np.zeros(per_key.shape[1], dtype=bool)
    for segment in _side_segments(result, side):
        entry = shares.setdefault(segment.name, SegmentShare(segment.name, segment.role, [], [0.0] * len(per_key)))
        entry.spans.append((segment.start, segment.end))
        covered[segment.start:segment.end] = True
        for layer, value in enumerate(per_key[:, segment.start:segment.end].sum(axis=1)):
            entry.share_by_layer[layer] += float(value)
    out = list(shares.values())
    if not covered.all():
        out.append(SegmentShare(OTHER, "other", _runs(~covered), [float(v) for v in per_key[:, ~covered].sum(axis=1)]))
    missing = 1.0 - per_key.sum(axis=1)                             # weight on keys cut off by the attention cap
    if np.any(missing > 1e-4):
        out.append(SegmentShare(HIDDEN, "other", [], [float(max(value, 0.0)) for value in missing]))
    return out


def answer_focus(result: AttentionResult, layer: int, side: TokenSide | None = None) -> AnswerFocus:
    """Rows = the attention that chose each produced token; columns = the user's input and the answer so far token
    by token, each scaffold segment (instruction, demonstration k, format words, first token, other) one summed
    column."""
    side = side or focus_side(result)
    rows, produced = deciding_rows(result, side)
    if not rows:
        raise ValueError(f"this {result.task} result has no produced tokens on the {side} side")
    tokens = result.tokens(side)
    columns = _focus_columns(result, side, tokens)
    attention = result.self_attention(side)[layer][:, rows, :]     # (head, row, key_pos)
    weights = np.stack([attention[:, :, column.positions].sum(axis=-1) for column in columns], axis=-1)
    return AnswerFocus(side, layer, rows, produced, [tokens[position] for position in produced], columns,
                       weights.astype(np.float32))                 # (head, row, column)


def source_alignment(result: AttentionResult, layer: int) -> tuple[np.ndarray, list[int], list[int]]:
    """The decoder-only analogue of cross-attention: (head, produced token, input token) weights of one layer,
    renormalised over the input tokens (of the attention that reached the user's text, where it went). A row that
    cannot see the input at all (a sliding-window layer, the input beyond the window) stays all zero.
    Returns (weights, row positions (the rows that chose each produced token), input positions)."""
    side = focus_side(result)
    rows, _ = deciding_rows(result, side)
    inputs = [position for segment in _side_segments(result, side) if segment.role == "input"
              for position in range(segment.start, segment.end)]
    if not rows or not inputs:
        raise ValueError("this result has no produced tokens or no input tokens to align")
    block = result.self_attention(side)[layer][:, rows][:, :, inputs].astype(np.float64)  # (head, row, input)
    total = block.sum(axis=-1, keepdims=True)
    return (block / np.where(total > 0, total, 1.0)).astype(np.float32), rows, inputs


def _focus_columns(result: AttentionResult, side: TokenSide, tokens: list[str]) -> list[FocusColumn]:
    columns: list[FocusColumn] = []
    grouped: dict[str, FocusColumn] = {}
    covered = np.zeros(len(tokens), dtype=bool)
    for segment in _side_segments(result, side):
        covered[segment.start:segment.end] = True
        positions = list(range(segment.start, segment.end))
        if segment.role in ("input", "output"):
            columns += [FocusColumn(tokens[p], [p], segment.role, False) for p in positions]
        elif segment.name in grouped:
            grouped[segment.name].positions += positions
            grouped[segment.name].text += " … " + "".join(tokens[p] for p in positions)
        else:
            grouped[segment.name] = FocusColumn(segment.name, positions, segment.role, True,
                                                "".join(tokens[p] for p in positions))
            columns.append(grouped[segment.name])
    rest = [position for position in range(len(tokens)) if not covered[position]]
    if rest:
        columns.append(FocusColumn(OTHER, rest, "other", True, " ".join(tokens[p] for p in rest)))
    return columns


def _side_segments(result: AttentionResult, side: TokenSide) -> list[Segment]:
    return sorted((segment for segment in result.segments if segment.side == side), key=lambda s: s.start)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for position, value in enumerate(list(mask) + [False]):
        if value and start is None:
            start = position
        elif not value and start is not None:
            runs.append((start, position))
            start = None
    return runs
