"""The hand computation of one layer's attention, with the layer's own weights, asked of the family adapter."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from service.errors import UnsupportedError
from service.families import FamilyAdapter, parse_layer_type


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(…, d) → (…, d): [-x₂, x₁] for the halves x₁, x₂ (RoPE's rotation by 90°, pairwise)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (T, heads, d) by position: x·cos + rotate_half(x)·sin, with cos/sin (T, d) broadcast over heads."""
    return x * cos.unsqueeze(1) + _rotate_half(x) * sin.unsqueeze(1)  # (T, 1, d) broadcast → (T, heads, d)


def key_mask(layer_type: str, position: int, tokens: int, device: Any) -> torch.Tensor:
    """(T,) True where query `position` may attend to key j: causal (j ≤ i), sliding window (j > i − w), or all."""
    causal, window = parse_layer_type(layer_type)
    keys = torch.arange(tokens, device=device)
    allowed = torch.ones(tokens, dtype=torch.bool, device=device)  # (T,)
    if causal:
        allowed &= keys <= position
    if window is not None:
        allowed &= keys > position - window
    return allowed


def recompute(adapter: FamilyAdapter, model: Any, captured: dict[str, Any], layer: int, head: int, position: int,
              model_rows: torch.Tensor) -> dict[str, Any]:
    """Every stage of head `head` at query `position`, from the captured input of the attention module.

    model_rows (H, T) is the model's own attention at `position` (output_attentions). Returns the ExplainResult
    fields of the stages (numpy) plus `max_abs_diff` and `checks` (stage → difference from the model's tensor).
    """
    missing = {"layer0_input", "layer_input", "attention_input", "attention_output", "block_output"} - set(captured)
    if missing:
        raise UnsupportedError(f"Could not capture {', '.join(sorted(missing))} from this model's forward pass.")
    config = model.config
    x = captured["attention_input"][0]                       # (T, D)
    tokens = x.shape[0]
    group = adapter.num_heads(config) // adapter.key_value_heads(config)
    kv_head = head // group
    checks: dict[str, float] = {}

    q_all, k_all, v_all = adapter.project_qkv(model, layer, x)  # (T, H, d), (T, Hkv, d), (T, Hkv, d)
    query_raw, key_raw = q_all[:, head], k_all[:, kv_head]     # (T, d) each
    query_normed = key_normed = None
    qk_norms = adapter.qk_norms(model, layer)
    if qk_norms is not None:
        q_all = adapter.apply_norm(qk_norms[0], q_all)          # (T, H, d): per head, over d
        k_all = adapter.apply_norm(qk_norms[1], k_all)          # (T, Hkv, d)
        query_normed, key_normed = q_all[:, head], k_all[:, kv_head]
    if adapter.facts.uses_rope:
        if "position_embeddings" not in captured:
            raise UnsupportedError("Could not capture the rotary position embeddings (cos, sin) of this model.")
        cos, sin = captured["position_embeddings"]          # (1, T, d) each
        q_all, k_all = apply_rope(q_all, cos[0], sin[0]), apply_rope(k_all, cos[0], sin[0])

    # Scores for every query, in the model's own layout and op order (matmul, then × scale; softmax in float32
    # where the model does so), so bfloat16 models reproduce bit for bit.
    scale = adapter.attention_scale(model, layer)
    q_heads = q_all.transpose(0, 1)                                           # (H, T, d)
    k_heads = k_all.transpose(0, 1).repeat_interleave(group, dim=0)           # (H, T, d): a KV head per `group` heads
    v_heads = v_all.transpose(0, 1).repeat_interleave(group, dim=0)           # (H, T, d)
    all_scores = torch.matmul(q_heads.unsqueeze(0), k_heads.unsqueeze(0).transpose(2, 3)) * scale
    # all_scores: (batch, head, query_pos, key_pos)
    scores = all_scores[0, :, position, :]                                    # (H, T): query `position` vs every key

    layer_type = adapter.layer_types(config, len(adapter.layers(model)))[layer]
    allowed = key_mask(layer_type, position, tokens, x.device)  # (T,)
    masked = scores.masked_fill(~allowed, float("-inf"))     # (H, T)
    if adapter.softmax_in_float32:
        rows = torch.softmax(masked, dim=-1, dtype=torch.float32).to(x.dtype)  # (H, T)
    else:
        rows = torch.softmax(masked, dim=-1)                  # (H, T)

    max_abs_diff = _max_diff(rows[head], model_rows[head])
    checks["attention_row"] = max_abs_diff
    checks["all_heads_at_position"] = _max_diff(rows, model_rows)

    head_outputs = torch.matmul(rows.unsqueeze(1), v_heads)[:, 0]  # (H, 1, T)·(H, T, d) → (H, d)
    concat = head_outputs.reshape(-1)                          # (H·d,)
    projected = adapter.project_output(model, layer, concat)   # (D,)
    checks["attention_output"] = _relative_diff(projected, captured["attention_output"][0, position])

    residual = captured["layer_input"][0, position]          # (D,)
    block_output = adapter.after_attention(model, layer, projected.unsqueeze(0), residual.unsqueeze(0))[0]  # (D,)
    checks["after_residual_and_norm"] = _relative_diff(block_output, captured["block_output"][0, position])

    input_ids = captured["input_ids"]                         # (T,)
    token_embeddings = adapter.word_embeddings(model).weight[input_ids]  # (T, D) rows of the table
    checks["embeddings"] = _relative_diff(adapter.embed(model, input_ids), captured["layer0_input"][0])
    input_norm = adapter.input_norm(model, layer)
    if input_norm is not None:
        checks["input_norm"] = _relative_diff(adapter.apply_norm(input_norm, captured["layer_input"][0]), x)

    return {
        "token_embeddings": _numpy(token_embeddings),
        "input_embeddings": _numpy(captured["layer0_input"][0]),
        "layer_input": _numpy(captured["layer_input"][0]),
        "attention_input": _numpy(x),
        "query_raw": _numpy(query_raw), "key_raw": _numpy(key_raw), "value": _numpy(v_all[:, kv_head]),
        "query_normed": None if query_normed is None else _numpy(query_normed),
        "key_normed": None if key_normed is None else _numpy(key_normed),
        "query": _numpy(q_all[:, head]), "key": _numpy(k_all[:, kv_head]),
        "scores_raw": _numpy(scores[head]), "mask": allowed.cpu().numpy(), "scores_masked": _numpy(masked[head]),
        "recomputed": _numpy(rows[head]), "model_row": _numpy(model_rows[head]),
        "head_output": _numpy(head_outputs[head]), "heads_concat": _numpy(concat),
        "attention_output": _numpy(projected), "residual": _numpy(residual), "block_output": _numpy(block_output),
        "max_abs_diff": max_abs_diff, "checks": checks, "layer_type": layer_type,
    }


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max().item())


def _relative_diff(recomputed: torch.Tensor, model: torch.Tensor) -> float:
    """max |recomputed − model| / max(1, max |model|): float32 rounding grows with the values' size."""
    return _max_diff(recomputed, model) / max(1.0, float(model.float().abs().max().item()))


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32)
