"""Head roles: what each attention head does, measured on a probe, with the scores that back the label.

The probe (the standard one for induction heads, Olsson et al. 2022): <bos> then a random sequence of n tokens
repeated twice. A head's scores are means over its attention rows (query q ≥ 1; <bos> row left out):
    previous-token  A[q, q-1]                      attention to the token just before
    first-token     A[q, 0]                        attention parked on the first token (a "sink")
    local           Σ A[q, q-3..q]                 attention within the last four tokens, itself included
    induction       A[q, q-n+1], q in the 2nd copy attention to the token that followed this token's earlier
                                                   occurrence (what lets a model continue a repeated pattern)
    broad           H(A[q]) / log(q+1)             entropy as a share of the most spread possible
The label is the first role whose score clears its threshold, in the order of ROLE_THRESHOLDS; otherwise "mixed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PROBE_LENGTH = 24          # n random tokens, repeated once: 2n + 1 positions with <bos>
PROBE_SEED = 0
ROLE_THRESHOLDS = (        # (role, score name, threshold), checked in this order
    ("induction", "induction", 0.3),
    ("previous-token", "previous_token", 0.5),
    ("first-token sink", "first_token", 0.5),
    ("local", "local", 0.7),
    ("broad", "broad", 0.7),
)
LOCAL_WINDOW = 4


@dataclass
class HeadRole:
    layer: int
    head: int
    role: str
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "head": self.head, "role": self.role, "scores": self.scores}


def score_heads(attention: np.ndarray, repeat_length: int) -> np.ndarray:
    """(layer, head, score) of an attention array over a probe <bos> + x + x, len(x) = repeat_length.
    attention: (layer, head, T, T) with T = 2·repeat_length + 1. Scores in the order of SCORE_NAMES."""
    layers, heads, length, _ = attention.shape
    n = repeat_length
    if length != 2 * n + 1:
        raise ValueError(f"attention has {length} positions but a probe of {n} repeated tokens has {2 * n + 1}")
    a = attention.astype(np.float64)
    queries = np.arange(1, length)                                            # every row but <bos>
    previous = a[:, :, queries, queries - 1].mean(-1)                         # (layer, head)
    first = a[:, :, queries, 0].mean(-1)
    local = np.stack([a[:, :, q, max(0, q - LOCAL_WINDOW + 1): q + 1].sum(-1) for q in queries], -1).mean(-1)
    second = np.arange(n + 1, length)                                         # queries in the second copy
    induction = a[:, :, second, second - n + 1].mean(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(a > 0, a * np.log(a), 0.0).sum(-1)               # (layer, head, T)
    broad = (entropy[:, :, queries] / np.log(queries + 1)).mean(-1)
    return np.stack([previous, first, local, induction, broad], axis=-1)     # (layer, head, 5)


SCORE_NAMES = ("previous_token", "first_token", "local", "induction", "broad")


def label_heads(scores: np.ndarray) -> list[HeadRole]:
    """A HeadRole per (layer, head) from score_heads' array."""
    roles = []
    for layer in range(scores.shape[0]):
        for head in range(scores.shape[1]):
            named = {name: round(float(value), 4) for name, value in zip(SCORE_NAMES, scores[layer, head])}
            role = next((role for role, name, threshold in ROLE_THRESHOLDS if named[name] >= threshold), "mixed")
            roles.append(HeadRole(layer, head, role, named))
    return roles


def probe_ids(tokenizer: Any, repeat_length: int = PROBE_LENGTH, seed: int = PROBE_SEED) -> list[int]:
    """<bos> (or the first special id) + n random ordinary token ids + the same n again."""
    rng = np.random.default_rng(seed)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocabulary = [token_id for token_id in range(min(len(tokenizer), 50_000)) if token_id not in special]
    sequence = [int(token_id) for token_id in rng.choice(vocabulary, size=repeat_length, replace=False)]
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else (
        tokenizer.eos_token_id if tokenizer.eos_token_id is not None else sequence[0])
    return [int(start)] + sequence + sequence


def probe_head_roles(model: Any, tokenizer: Any) -> list[HeadRole]:
    """Run the probe once (one eager forward) and label every head. Hold the model's lock and inference mode."""
    import torch

    from service.attention.capture import decoder_attention

    ids = probe_ids(tokenizer)
    attention = decoder_attention(model, torch.tensor([ids], device=model.device))   # (layer, head, T, T)
    return label_heads(score_heads(attention, PROBE_LENGTH))
