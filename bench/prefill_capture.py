"""A cheaper attention capture, measured beside the service's: the prefill IS the capture pass.

The service generates with sdpa, then runs one more eager forward over prompt + output to get the attention.
For few-shot tasks (a long prompt of demonstrations, a short answer) that second pass costs about as much as the
whole generation. Here the prompt's prefill runs once, on the eager kernel with output_attentions=True, which
gives the (prompt × prompt) block; each decoding step then feeds one token and returns that token's attention row
(the KV cache holds the keys). Nothing is computed twice. Attention matches the one-pass capture to ~1e-6.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.bare import BareModel


def prefill_capture(bare: BareModel, prompt: str, rows: int) -> tuple[list[int], np.ndarray]:
    """Greedy-generate `rows` tokens after `prompt` and return (sequence ids, (layer, head, T, T) attention),
    with T = prompt tokens + rows. One eager prefill with attention, then `rows` single-token eager steps."""
    import torch

    model = bare.model
    prompt_ids = bare.encode(prompt)["input_ids"]                                   # (1, P)
    previous = getattr(model.config, "_attn_implementation", "sdpa")
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            output = model(input_ids=prompt_ids, use_cache=True, output_attentions=True, logits_to_keep=1)
            cache = output.cache
            prompt_block = [layer[0] for layer in output.attentions]               # per layer (head, P, P)
            token = int(output.logits[0, -1].argmax())
            sequence = prompt_ids[0].tolist()
            step_rows: list[list[Any]] = []                                         # per step, per layer (head, P+s)
            for _ in range(rows):
                sequence.append(token)
                step = model(input_ids=torch.tensor([[token]], device=prompt_ids.device), cache=cache,
                             use_cache=True, output_attentions=True, logits_to_keep=1)
                cache = step.cache
                step_rows.append([layer[0, :, 0] for layer in step.attentions])
                token = int(step.logits[0, -1].argmax())
    finally:
        model.set_attn_implementation(previous)
    return sequence, assemble(prompt_block, step_rows)


def assemble(prompt_block: list[Any], step_rows: list[list[Any]]) -> np.ndarray:
    """(layer, head, T, T) float32 from per-layer (head, P, P) blocks and per-step, per-layer (head, keys) rows.

    A step's row covers the last `keys` positions up to its own: all of them, or a sliding layer's window.
    """
    layers = len(prompt_block)
    heads, prompt_length, _ = prompt_block[0].shape
    total = prompt_length + len(step_rows)
    attention = np.zeros((layers, heads, total, total), dtype=np.float32)  # (layer, head, query_pos, key_pos)
    for layer in range(layers):
        attention[layer, :, :prompt_length, :prompt_length] = prompt_block[layer].float().cpu().numpy()
        for index, row in enumerate(step_rows):
            query = prompt_length + index
            keys = row[layer].shape[-1]       # query + 1, or the window of a sliding layer (its cache keeps no more)
            attention[layer, :, query, query + 1 - keys : query + 1] = row[layer].float().cpu().numpy()  # (head, key)
    return attention
