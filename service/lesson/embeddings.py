"""The embedding step: how alike the sentence's vectors are, and which vocabulary rows lie nearest each token's.

cos(a, b) = a·b / (||a|| ||b||). Token-by-token similarity is taken on what enters layer 0 (adapter.embed: the
rows × the family's scale, + learned positions where the family adds them); neighbours on the raw rows of the
embedding table (a scale changes no cosine). The caller holds the model's lock and inference mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from service.families import adapter_for

NEIGHBOURS = 5


@dataclass
class EmbeddingGeometry:
    """cosine (T, T), norms (T,), neighbours (T,) lists of NEIGHBOURS (display string, cosine), nearest first."""

    cosine: np.ndarray
    norms: np.ndarray
    neighbours: list[list[tuple[str, float]]]


def embedding_geometry(model: Any, token_ids: list[int], token_text: Callable[[int], str],
                       count: int = NEIGHBOURS) -> EmbeddingGeometry:
    """Cosine similarity and norms of the layer-0 inputs of `token_ids`, and each token's `count` nearest rows of
    the embedding table (its own row excluded), named by `token_text(id)`."""
    adapter = adapter_for(model)
    ids = torch.tensor(token_ids, device=model.device)                        # (T,)
    entering = adapter.embed(model, ids).float()                              # (T, D)
    norms = entering.norm(dim=-1)                                             # (T,)
    unit = entering / norms.clamp_min(1e-12)[:, None]                         # (T, D)
    cosine = unit @ unit.T                                                    # (T, T)

    table = adapter.word_embeddings(model).weight                             # (V, D)
    rows = table[ids].float()                                                 # (T, D)
    row_unit = rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)        # (T, D)
    table_norms = torch.linalg.vector_norm(table, dim=-1).float().clamp_min(1e-12)   # (V,)
    similarity = (row_unit.to(table.dtype) @ table.T).float() / table_norms   # (T, V)
    similarity[torch.arange(len(token_ids)), ids] = -2.0                      # never its own row
    top = torch.topk(similarity, count, dim=-1)                               # (T, count)
    neighbours = [[(token_text(int(i)), float(c)) for i, c in zip(row_ids, row_cosines)]
                  for row_ids, row_cosines in zip(top.indices.tolist(), top.values.tolist())]
    return EmbeddingGeometry(cosine.cpu().numpy().astype(np.float32), norms.cpu().numpy().astype(np.float32),
                             neighbours)
