"""What every task runner shares: the one AttentionResult builder, token budgets, segments and JSON-ready values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from service import limits
from service.attention import capture
from service.attention.tokens import display_tokens
from service.models.loading import LoadedModel
from service.result import Architecture, AttentionResult, Segment, TaskName


def build_result(
    loaded: LoadedModel,
    task: TaskName,
    architecture: Architecture,
    prediction: dict[str, Any],
    *,
    encoder: tuple[list[int], np.ndarray] | None = None,
    decoder: tuple[list[int], np.ndarray] | None = None,
    cross_attention: np.ndarray | None = None,
    segments: list[Segment],
    prompt: str | None = None,
    notices: list[str] | None = None,
    timings: dict[str, float] | None = None,
) -> AttentionResult:
    """The AttentionResult of one run: display tokens from the ids, model facts from the config.

    encoder / decoder: (token ids, attention (layer, head, query_pos, key_pos)) of each side the model has;
    cross_attention: (layer, head, decoder_pos, encoder_pos). timings: {"model": s, "capture": s}.
    """
    sides: dict[str, Any] = {}
    for side, pair in (("encoder", encoder), ("decoder", decoder)):
        if pair is not None:
            ids, attention = pair
            tokens, special = display_tokens(loaded.tokenizer, ids)
            sides.update({f"{side}_tokens": tokens, f"{side}_special": special, f"{side}_attention": attention,
                          f"{side}_token_ids": [int(token_id) for token_id in ids]})
    num_layers = (decoder or encoder)[1].shape[0]  # type: ignore[index]
    return AttentionResult(
        task=task,
        model_name=loaded.name,
        architecture=architecture,
        prediction=json_ready(prediction),
        cross_attention=cross_attention,
        segments=segments,
        prompt=prompt,
        notices=list(notices or []),
        timings=dict(timings or {}),
        layer_types=capture.layer_types_of(loaded.model.config, num_layers),
        num_key_value_heads=capture.key_value_heads_of(loaded.model.config),
        **sides,
    )


def decoder_result(
    loaded: LoadedModel,
    task: TaskName,
    sequence: list[int],
    segments: list[Segment],
    max_attention_tokens: int,
    prediction: dict[str, Any],
    prompt: str | None,
    captured: capture.CapturedRows | None = None,
) -> AttentionResult:
    """A causal LM's result over `sequence`; keeps the last N positions over the cap (with a notice).

    Up to WHOLE_MATRIX_TOKENS positions the attention is whole matrices: from `captured` (rows the model computed
    while running) when it covers `sequence`, else from one eager pass over `sequence`. Longer, it is an
    OnDemandAttention: one pass keeps each layer's queries and keys, and views compute the layers they show.
    timings["capture"] is the time spent here.
    """
    import time

    from service.attention import on_demand  # torch: not for the views that import this module

    started = time.perf_counter()
    total = len(sequence)
    shown = min(total, max_attention_tokens)
    notices = []
    attention: Any
    if shown > limits.WHOLE_MATRIX_TOKENS and on_demand.can_keep_queries_keys(loaded.model):
        # long: kept queries and keys, each layer computed when a view asks (memory linear in N)
        attention = on_demand.keep_queries_keys(loaded.model, as_tensor(sequence, loaded.device), keep_last=shown)
    elif captured is not None and captured.covers(sequence):
        attention = capture.captured_attention(loaded.model, captured, total, keep_last=shown)  # (layer, head, N, N)
    else:
        attention = capture.decoder_attention(loaded.model, as_tensor(sequence, loaded.device), keep_last=shown)
    if shown < total:
        notices.append(capture.window_notice(shown, total))
        segments = capture.shift_segments(segments, total - shown, shown)
    result = build_result(
        loaded, task, "decoder", prediction, decoder=(sequence[total - shown:], attention), segments=segments,
        prompt=prompt, notices=notices,
    )
    result.timings = {"capture": time.perf_counter() - started}
    return result


def as_tensor(ids: list[int], device: str) -> Any:
    """A (batch=1, seq) long tensor of token ids on `device`."""
    import torch

    return torch.tensor([ids], dtype=torch.long, device=device)  # (batch=1, seq)


def max_positions(config: Any) -> int | None:
    """Longest sequence the model's position embeddings allow (None when unbounded / unknown)."""
    text_config = getattr(config, "get_text_config", lambda: config)()
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(text_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def token_budget(loaded: LoadedModel, max_attention_tokens: int) -> int:
    """Tokens an encoder input may have: the attention cap, or the model's position limit if smaller."""
    limit = max_positions(loaded.model.config)
    return min(max_attention_tokens, limit) if limit else max_attention_tokens


def sink_segment(tokenizer: Any, ids: list[int], side: str = "decoder") -> list[Segment]:
    """[Segment("first token", 0, 1, role "sink")] when the sequence starts with a special token (<bos>, [CLS]),
    else []: heads that have nothing to do park their attention there."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return [Segment("first token", 0, 1, side, "sink")] if ids and ids[0] in special else []  # type: ignore[arg-type]


def sequence_segments(sequence_ids: list[int | None], names: dict[int, str], side: str = "encoder") -> list[Segment]:
    """Contiguous token spans of each input sequence (special tokens, with sequence id None, excluded), plus the
    first token as "first token" (role sink) when it is a special token such as [CLS]."""
    segments = []
    if sequence_ids and sequence_ids[0] is None:
        segments.append(Segment("first token", 0, 1, side, "sink"))  # type: ignore[arg-type]
    for sequence_id, name in names.items():
        positions = [index for index, sid in enumerate(sequence_ids) if sid == sequence_id]
        if positions:
            segments.append(Segment(name, positions[0], positions[-1] + 1, side))  # type: ignore[arg-type]
    return segments


def char_spans_to_segments(
    offsets: list[tuple[int, int]], spans: list[tuple[str, int, int, str]], side: str = "decoder"
) -> list[Segment]:
    """Token segments of (name, char_start, char_end, role) spans that tile a text, without overlap.

    A token belongs to the span holding its last character, so " The" after "Text:" counts as the user's word,
    not the format's; tokens without characters (<bos>) belong to none.
    """
    segments = []
    owners = [_owner(spans, end - 1) if end > start else None for start, end in offsets]
    for index, (name, _, _, role) in enumerate(spans):
        positions = [position for position, owner in enumerate(owners) if owner == index]
        if positions:
            segments.append(Segment(name, positions[0], positions[-1] + 1, side, role))  # type: ignore[arg-type]
    return segments


def _owner(spans: list[tuple[str, int, int, str]], char: int) -> int | None:
    for index, (_, start, end, _) in enumerate(spans):
        if start <= char < end:
            return index
    return None


def json_ready(value: Any) -> Any:
    """Plain Python (dict, list, str, int, float, bool, None) from numpy / torch scalars and containers."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if hasattr(value, "item"):
        return json_ready(value.item())
    return str(value)
