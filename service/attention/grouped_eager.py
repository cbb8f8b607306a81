"""Eager attention for grouped-query models without copying each key / value head for its query heads.

transformers' eager kernel (the one that returns attention weights) first repeats every key and value head for the
query heads that share it (`repeat_kv`): on Gemma-3-270M, 4 query heads per key head, so each layer copies its whole
key / value cache 4× per forward. In a batched decoding step of 12 requests over ~220 columns that is 55 ms of a
~290 ms step on the 2-core CPU; this kernel takes 4 ms for the same. It groups the query heads instead:
query (batch, heads, q, dim) → (batch, kv_heads, heads_per_kv × q, dim), one product with the keys as they are,
the mask added per group. The sums are the same dot products, so weights and outputs equal eager's (0.0 max
difference over a 298-token Gemma prompt, every layer; tests/test_grouped_eager.py).

Only for families whose eager kernel is transformers' standard one (FamilyAdapter.grouped_eager): scaled q·kᵀ,
optional tanh soft-capping, an additive mask, softmax in float32. Registered as its own kernel name, with eager's
mask builder, so `set_attention_kernel(model, GROUPED_EAGER)` switches to it (attention/capture.py does).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

GROUPED_EAGER = "atlas_grouped_eager"


def grouped_eager_attention(
    module: torch.nn.Module,
    query: torch.Tensor,                 # (batch, heads, q, dim)
    key: torch.Tensor,                   # (batch, kv_heads, keys, dim)
    value: torch.Tensor,                 # (batch, kv_heads, keys, dim)
    attention_mask: torch.Tensor | None,  # (batch, 1 or heads, q, keys) additive
    dropout: float = 0.0,
    scaling: float | None = None,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(output (batch, q, heads, dim), weights (batch, heads, q, keys)), as transformers' eager_attention_forward."""
    batch, heads, queries, dim = query.shape
    groups = key.shape[1]
    per_group = heads // groups
    if scaling is None:
        scaling = module.head_dim ** -0.5
    grouped = query.reshape(batch, groups, per_group * queries, dim)            # (batch, kv, per_group × q, dim)
    weights = torch.matmul(grouped, key.transpose(2, 3)) * scaling              # (batch, kv, per_group × q, keys)
    if softcap is not None:
        weights = torch.tanh(weights / softcap) * softcap
    weights = weights.reshape(batch, groups, per_group, queries, -1)             # (batch, kv, per_group, q, keys)
    if attention_mask is not None:
        if attention_mask.shape[1] == 1:
            weights = weights + attention_mask[:, :, None]                       # (batch, 1, 1, q, keys)
        else:
            weights = weights + attention_mask.reshape(attention_mask.shape[0], groups, per_group, queries, -1)
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights.reshape(batch, groups, per_group * queries, -1), value)   # (batch, kv, p × q, dim)
    output = output.reshape(batch, heads, queries, dim).transpose(1, 2).contiguous()      # (batch, q, heads, dim)
    return output, weights.reshape(batch, heads, queries, -1)


AttentionInterface.register(GROUPED_EAGER, grouped_eager_attention)
AttentionMaskInterface.register(GROUPED_EAGER, eager_mask)
