"""Attention capture: the attention weights a model computed over the exact tokens it saw.

Two ways, same numbers (NOTES.md: max diff 3.8e-6 on Gemma):
- after the fact (generation tab, specialists): generate on the fast kernel (sdpa, no weights), then ONE eager
  pass over prompt + output with logits_to_keep=1, so no T × vocab logits are materialised;
- while running (few-shot tasks, whose long prompt makes a second pass cost as much as the short generation):
  the prefill runs on the eager kernel with output_attentions and gives the (prompt × prompt) block; each
  decoding step gives its token's attention row. `CapturedRows` keeps these pieces and assembles the matrix.
The caller must hold the model's lock: the kernel switch changes the shared model for every thread.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from service.models.loading import set_attention_kernel
from service.result import Segment


def inference_mode() -> Any:
    """torch.inference_mode() (imported on first use). Gradio worker threads need it per call: a module-level
    torch.set_grad_enabled(False) does not reach them."""
    import torch

    return torch.inference_mode()


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Switch `model` to the eager kernel (the one that returns attention weights) for the duration, then back to
    the kernel it had. The one way this project switches kernels: hold the model's lock around it. A grouped-query
    model of a family with the standard eager kernel gets the same kernel without copying its key / value heads
    (service/attention/grouped_eager.py: equal weights, less memory traffic)."""
    previous = getattr(model.config, "_attn_implementation", None) or "sdpa"
    set_attention_kernel(model, _eager_kernel(model))
    try:
        yield
    finally:
        set_attention_kernel(model, previous)


def _eager_kernel(model: Any) -> str:
    from service.errors import UnsupportedError
    from service.families import adapter_for

    try:
        adapter = adapter_for(model)
    except UnsupportedError:
        return "eager"
    config = getattr(model, "config", None)
    if not adapter.grouped_eager or adapter.key_value_heads(config) >= adapter.num_heads(config):
        return "eager"
    from service.attention.grouped_eager import GROUPED_EAGER

    return GROUPED_EAGER


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


@dataclass
class CapturedRows:
    """Attention a causal LM computed while it ran: the prompt's block plus one row per later token.

    token_ids:    every token the rows cover, in order (prompt, then the later tokens)
    prompt_block: per layer, a (head, P, P) tensor: the prompt's causal attention
    later_rows:   per later token, per layer, a (head, keys) tensor: that token's attention over the last `keys`
                  positions up to and including itself (all of them, or a sliding layer's window)
    pending:      (token id, KV cache) of a generated token that was never fed (generation stopped at its token
                  limit), whose row one more single-token step gives on demand (see `captured_attention`)
    """

    token_ids: list[int]
    prompt_block: list[Any]
    later_rows: list[list[Any]]
    pending: tuple[int, Any] | None = None

    def covers(self, ids: list[int]) -> bool:
        """True when `ids` is a prefix of the captured tokens, the pending one included (causal attention of a
        prefix is the prefix's own)."""
        known = self.token_ids + ([self.pending[0]] if self.pending is not None else [])
        return len(ids) <= len(known) and known[: len(ids)] == list(ids)

    def feed_pending(self, model: Any) -> None:
        """Run the pending token through the model (one cached step) to get its row. Eager kernel, model's lock."""
        import torch

        assert self.pending is not None
        token, cache = self.pending
        position = len(self.token_ids)
        device = self.prompt_block[0].device
        with torch.inference_mode():
            step = model(
                input_ids=torch.tensor([[token]], device=device),                    # (1, 1)
                position_ids=torch.tensor([[position]], device=device),              # (1, 1)
                cache=cache, use_cache=True, output_attentions=True, logits_to_keep=1,
            )
        self.later_rows.append([layer[0, :, -1] for layer in step.attentions])       # per layer (head, keys)
        self.token_ids.append(token)
        self.pending = None

    def matrix(self, length: int, keep_last: int | None = None) -> np.ndarray:
        """(layer, head, N, N) float32 attention of the first `length` tokens; N = min(length, keep_last)."""
        shown = length if keep_last is None else min(length, keep_last)
        offset = length - shown                                   # positions dropped at the start
        layers = len(self.prompt_block)
        heads, prompt_length, _ = self.prompt_block[0].shape
        attention = np.zeros((layers, heads, shown, shown), dtype=np.float32)  # (layer, head, query_pos, key_pos)
        block_end = min(prompt_length, length)
        if block_end > offset:
            for layer in range(layers):
                block = self.prompt_block[layer][:, offset:block_end, offset:block_end]  # (head, query, key)
                attention[layer, :, : block_end - offset, : block_end - offset] = block.float().cpu().numpy()
        for index, row in enumerate(self.later_rows):
            query = prompt_length + index
            if query >= length:
                break
            if query < offset:
                continue
            for layer in range(layers):
                keys = row[layer].shape[-1]
                first_key = query + 1 - keys                          # the row covers keys first_key .. query
                skip = max(offset - first_key, 0)
                values = row[layer][:, skip:].float().cpu().numpy()   # (head, visible keys)
                attention[layer, :, query - offset, first_key + skip - offset : query + 1 - offset] = values
        return attention


def captured_attention(model: Any, captured: CapturedRows, length: int, keep_last: int | None = None) -> np.ndarray:
    """(layer, head, N, N) attention of the first `length` captured tokens, feeding the pending token if needed."""
    if length > len(captured.token_ids) and captured.pending is not None:
        with eager_attention(model):
            captured.feed_pending(model)
    return captured.matrix(length, keep_last)


def rows_from_generation(step_attentions: Any, token_ids: list[int], cache: Any = None) -> CapturedRows:
    """CapturedRows from `generate(..., output_attentions=True, return_dict_in_generate=True)` on the eager kernel.

    step_attentions: per step, per layer: step 0 (1, head, P, P), then (1, head, 1, keys) per decoding step.
    token_ids: prompt + generated ids. The last generated token is never fed, so it has no row: with `cache`
    (the generation's KV cache) it is kept pending, to be fed only if a caller needs its row.
    """
    prompt_block = [layer[0] for layer in step_attentions[0]]                    # per layer (head, P, P)
    later_rows = [[layer[0, :, -1] for layer in step] for step in step_attentions[1:]]  # per step (head, keys)
    covered = prompt_block[0].shape[-1] + len(later_rows)
    pending = (token_ids[covered], cache) if cache is not None and covered < len(token_ids) else None
    return CapturedRows(list(token_ids[:covered]), prompt_block, later_rows, pending)


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
            shifted.append(Segment(segment.name, start, end, segment.side, segment.role))
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
