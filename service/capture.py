"""Attention capture: one eager forward pass with output_attentions=True over the exact tokens the model saw.

Generation runs on the fast kernel (sdpa), which returns no attention weights. Afterwards ONE eager pass over
prompt + output gives the same attention generation computed (NOTES.md: max diff 3.8e-6 on Gemma), with
logits_to_keep=1 so no T × vocab logits are materialised. The caller must hold the model's lock: the kernel
switch changes the shared model for every thread.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from service.loading import set_attention_kernel
from service.result import Segment


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Switch `model` to the eager kernel for the duration, then back to sdpa. Hold the model's lock."""
    set_attention_kernel(model, "eager")
    try:
        yield
    finally:
        set_attention_kernel(model, "sdpa")


def stack_attention(attentions: Any, keep_last: int | None = None) -> np.ndarray:
    """Per-layer (1, head, query, key) tensors → float32 (layer, head, query, key), optionally the last N positions."""
    layers = []
    for layer_attention in attentions:
        weights = layer_attention[0]  # (head, query_pos, key_pos)
        if keep_last is not None:
            weights = weights[:, -keep_last:, -keep_last:]  # (head, last query_pos, last key_pos)
        layers.append(weights.float().cpu().numpy())
    return np.stack(layers)  # (layer, head, query_pos, key_pos)


def stack_cross_attention(attentions: Any) -> np.ndarray:
    """Per-layer (1, head, target, source) tensors → float32 (layer, head, decoder_pos, encoder_pos)."""
    return np.stack([layer_attention[0].float().cpu().numpy() for layer_attention in attentions])


def decoder_attention(model: Any, input_ids: Any, keep_last: int | None = None) -> np.ndarray:
    """(layer, head, T', T') self-attention of a causal LM over `input_ids` (1, T); T' = min(T, keep_last)."""
    with eager_attention(model):
        outputs = model(
            input_ids=input_ids,
            attention_mask=None,
            output_attentions=True,
            use_cache=False,
            logits_to_keep=1,
        )
    return stack_attention(outputs.attentions, keep_last)


def encoder_forward(model: Any, inputs: dict[str, Any]) -> tuple[Any, np.ndarray]:
    """Eager forward of an encoder model (classifier / QA head): (outputs, (layer, head, S, S) attention)."""
    with eager_attention(model):
        outputs = model(**inputs, output_attentions=True)
    return outputs, stack_attention(outputs.attentions)


@dataclass
class Seq2SeqAttention:
    encoder: np.ndarray  # (layer, head, S, S)
    decoder: np.ndarray  # (layer, head, T, T)
    cross: np.ndarray    # (layer, head, T, S)


def seq2seq_attention(model: Any, input_ids: Any, attention_mask: Any, decoder_input_ids: Any) -> Seq2SeqAttention:
    """Encoder, decoder and cross-attention of an encoder-decoder model over source (1, S) and target (1, T)."""
    with eager_attention(model):
        outputs = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            output_attentions=True,
            use_cache=False,
            logits_to_keep=1,
        )
    return Seq2SeqAttention(
        encoder=stack_attention(outputs.encoder_attentions),
        decoder=stack_attention(outputs.decoder_attentions),
        cross=stack_cross_attention(outputs.cross_attentions),
    )


def window_notice(shown: int, total: int) -> str:
    return (
        f"Attention shows the last {shown} of {total} tokens; rows no longer sum to 1 where attention "
        f"went to the {total - shown} earlier tokens that are hidden."
    )


def truncation_notice(kept: int) -> str:
    return f"Input truncated to {kept} tokens."


def shift_segments(segments: list[Segment], dropped: int, length: int) -> list[Segment]:
    """Segments after dropping the first `dropped` tokens of a sequence now `length` long (empty ones removed)."""
    shifted = []
    for segment in segments:
        start = max(segment.start - dropped, 0)
        end = min(segment.end - dropped, length)
        if end > start:
            shifted.append(Segment(segment.name, start, end, segment.side))
    return shifted


def layer_types_of(config: Any, num_layers: int) -> list[str]:
    """'full' or 'sliding:<window>' per layer, from config.layer_types where the model has them."""
    text_config = getattr(config, "get_text_config", lambda: config)()
    types = getattr(text_config, "layer_types", None)
    if not types:
        return ["full"] * num_layers
    window = getattr(text_config, "sliding_window", None)
    return [f"sliding:{window}" if "sliding" in str(kind) else "full" for kind in types][:num_layers]


def key_value_heads_of(config: Any) -> int | None:
    """Number of key/value heads when fewer than query heads (grouped-query attention), else None."""
    text_config = getattr(config, "get_text_config", lambda: config)()
    kv_heads = getattr(text_config, "num_key_value_heads", None)
    heads = getattr(text_config, "num_attention_heads", None)
    if kv_heads and heads and kv_heads < heads:
        return int(kv_heads)
    return None
