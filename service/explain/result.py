"""ExplainResult: one head's attention row recomputed by hand, every stage beside the model's own (numpy, no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TOLERANCE = 1e-4


@dataclass
class ExplainResult:
    """One head's attention for one query token, recomputed by hand and compared with the model's own.

    Shapes (T = tokens, D = hidden size, d = head dim, H = query heads):
        token_embeddings   (T, D)  rows of the embedding table for the ids (before any scaling)
        input_embeddings   (T, D)  what enters layer 0 (scaled / plus positions / normalised, per family)
        layer_input        (T, D)  the residual stream entering layer `layer`
        attention_input    (T, D)  X: what the attention's projections read (after input norm on pre-norm models)
        query_raw, key_raw, value   (T, d)  X W_Q (this head), X W_K and X W_V (its key/value head), biases included
        query_normed, key_normed    (T, d) | None  after q_norm / k_norm (families with q/k norm: Gemma 3)
        query, key                  (T, d)  what the scores use (after norm and RoPE where the model has them)
        scores_raw         (T,)   q_position · K_j × scale for every key j, before the mask
        mask               (T,)   True where key j may be attended to from `position`
        scores_masked      (T,)   scores_raw with -inf where the mask forbids
        recomputed         (T,)   softmax(scores_masked): the recomputed attention row
        model_row          (T,)   the model's own attention row (output_attentions, eager)
        head_output        (d,)   recomputed · V
        heads_concat       (H·d,) all heads' outputs at `position`, concatenated (recomputed)
        attention_output   (D,)   heads_concat W_O (+ bias): the attention sublayer's output (recomputed)
        block_output       (D,)   after the residual add and norm that follow attention (recomputed)
        residual           (D,)   the residual stream at `position` that the attention output is added to

    `facts` is the family adapter's FamilyFacts as a plain dict (name, norm_name, norm_formula, norm_placement,
    positional, segment_embeddings, embedding_norm, uses_qk_norm, uses_rope, fused_qkv): what the views need to
    write the family's formulas and prose without asking which family it is.
    """

    model_name: str
    family: str                      # config.model_type, e.g. "gemma3_text"
    architecture: str                # "decoder-only" | "encoder-only"
    text: str
    tokens: list[str]
    token_ids: list[int]
    special: list[bool]
    layer: int
    head: int
    position: int
    kv_head: int
    num_layers: int
    num_heads: int
    num_key_value_heads: int
    head_dim: int
    hidden_size: int
    layer_type: str                  # "full" (causal), "sliding:<window>" or "bidirectional"
    scale: float
    embedding_scale: float | None
    norm_placement: str              # "pre-norm" | "post-norm" | "pre+post (sandwich)"
    token_embeddings: np.ndarray
    input_embeddings: np.ndarray
    layer_input: np.ndarray
    attention_input: np.ndarray
    query_raw: np.ndarray
    key_raw: np.ndarray
    value: np.ndarray
    query_normed: np.ndarray | None
    key_normed: np.ndarray | None
    query: np.ndarray
    key: np.ndarray
    scores_raw: np.ndarray
    mask: np.ndarray
    scores_masked: np.ndarray
    recomputed: np.ndarray
    model_row: np.ndarray
    head_output: np.ndarray
    heads_concat: np.ndarray
    attention_output: np.ndarray
    residual: np.ndarray
    block_output: np.ndarray
    max_abs_diff: float
    passed: bool
    # stage → max |recomputed − model|, divided by max(1, max |model|) for the hidden-size vectors (the residual
    # stream of deep layers reaches ~10³, where float32 rounding alone is ~10⁻⁴ absolute)
    checks: dict[str, float] = field(default_factory=dict)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uses_rope: bool = False
    uses_qk_norm: bool = False
    tolerance: float = TOLERANCE
    card: dict[str, Any] = field(default_factory=dict)       # architecture_card(model) of the explained model
    facts: dict[str, Any] = field(default_factory=dict)      # the family's FamilyFacts, as plain data

    @property
    def causal(self) -> bool:
        return self.layer_type != "bidirectional"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready answer of the `explain` API: tokens, recomputed row, model row, max_abs_diff and context."""
        return {
            "model_name": self.model_name,
            "family": self.family,
            "architecture": self.architecture,
            "tokens": list(self.tokens),
            "token_ids": list(self.token_ids),
            "layer": self.layer,
            "head": self.head,
            "position": self.position,
            "query_token": self.tokens[self.position],
            "kv_head": self.kv_head,
            "layer_type": self.layer_type,
            "scale": self.scale,
            "recomputed": _floats(self.recomputed),
            "model": _floats(self.model_row),
            "max_abs_diff": self.max_abs_diff,
            "passed": self.passed,
            "tolerance": self.tolerance,
            "mask": [bool(allowed) for allowed in self.mask],
            "scores": [None if not math.isfinite(x) else x for x in _floats(self.scores_masked)],
            "head_output": _floats(self.head_output),
            "checks": dict(self.checks),
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "notes": list(self.notes),
            "architecture_card": dict(self.card),
            "facts": dict(self.facts),
        }


def _floats(array: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(array, dtype=np.float64).ravel()]
