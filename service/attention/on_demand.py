"""Attention on demand: keep each layer's queries and keys, compute the layer a view shows when it asks.

Whole matrices cost layers × heads × T² floats (Gemma-3-270M: 19 MB at 256 tokens, 302 MB at 1,024); its queries
and keys cost layers × (heads + key/value heads) × T × head_dim (94 MB at 1,024: 4 query heads share 1 key head),
linear in T. A long result keeps those (`keep_queries_keys`, one forward pass on the fast kernel with a hook on
every attention module; the family adapter says where the projections, q/k norms and RoPE are) and hands views an
`OnDemandAttention`: indexed like the (layer, head, query_pos, key_pos) array it stands for, each layer a matrix
product and a softmax, equal to the model's own attention (fp32: max diff ~1e-6).

When only the last N of T tokens are kept (the attention cap), the rows still have the model's softmax over all T
keys: each kept row's log-sum-exp over every key is computed while the keys are there, so a kept row is exactly the
model's row cut to the kept keys (it sums to less than 1 where weight went to the hidden tokens, as the notice says).
The caller holds the model's lock (the hooks see every forward pass while they are on).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch

from service.errors import UnsupportedError
from service.families import FamilyAdapter, adapter_for, parse_layer_type
from service.threads import releases_thread_team

from service.limits import WHOLE_MATRIX_TOKENS  # noqa: F401  (up to it, whole matrices; beyond, queries and keys)

CACHED_LAYERS = 2   # whole layers kept computed at once (a layer switch recomputes; 17 MB each at 1,024 tokens)


def can_keep_queries_keys(model: Any) -> bool:
    """Whether the model's family adapter can rebuild its queries and keys (decoder families with a recompute)."""
    try:
        adapter = adapter_for(model)
    except UnsupportedError:
        return False
    return adapter.explainable and adapter.facts.causal


class OnDemandAttention:
    """(layer, head, query_pos, key_pos) attention from kept queries and keys, computed one layer at a time.

    queries[l]: (H, N, d) float32 after norms and RoPE, one per query head
    keys[l]:    (Hkv, N, d) float32, one per key/value head (grouped-query attention shares each over H / Hkv heads)
    log_norms[l]: (H, N) float32 log Σ_j exp(score) over every key the model saw (more than N when cut), or None
    offset:     positions dropped before the kept N (the mask counts absolute positions for sliding windows)
    Indexing follows numpy: `attention[layer]` → (H, N, N), `attention[layer, head]` → (N, N),
    `attention[:, :, rows, :]` → (L, H, len(rows), N) computing only those rows. `np.asarray(attention)` builds
    the whole array (large); whole-model views use `per_layer` instead, which caches its reductions.
    """

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, queries: list[torch.Tensor], keys: list[torch.Tensor], scales: list[float],
                 layer_types: list[str], log_norms: list[torch.Tensor | None], offset: int = 0) -> None:
        self.queries, self.keys, self.scales = queries, keys, scales
        self.layer_types, self.log_norms, self.offset = layer_types, log_norms, offset
        heads, tokens, _ = queries[0].shape
        self.shape = (len(queries), heads, tokens, tokens)
        self._layers: OrderedDict[int, np.ndarray] = OrderedDict()
        self._reductions: dict[Hashable, np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes kept (queries, keys and row norms), not the size of the array it stands for."""
        kept = [*self.queries, *self.keys, *(norm for norm in self.log_norms if norm is not None)]
        return int(sum(tensor.numel() * tensor.element_size() for tensor in kept))

    @property
    def held_bytes(self) -> int:
        """Bytes it may hold while views read it: the kept queries and keys plus the CACHED_LAYERS whole layers
        they compute (17 MB each at 1,024 tokens); what a store of results should count."""
        layers, heads, queries, keys = self.shape
        return self.nbytes + CACHED_LAYERS * heads * queries * keys * self.dtype.itemsize

    def layer(self, layer: int) -> np.ndarray:
        """(H, N, N) float32 attention of one layer (the last CACHED_LAYERS asked for stay computed)."""
        layer = _index(layer, self.shape[0])
        if layer in self._layers:
            self._layers.move_to_end(layer)
            return self._layers[layer]
        weights = self.rows(layer, None)
        self._layers[layer] = weights
        while len(self._layers) > CACHED_LAYERS:
            self._layers.popitem(last=False)
        return weights

    @releases_thread_team                                                        # views call it from request threads
    def rows(self, layer: int, rows: Any) -> np.ndarray:
        """(H, R, N) float32: the attention rows `rows` (positions, a slice, or None = all) of one layer."""
        layer = _index(layer, self.shape[0])
        if rows is None and layer in self._layers:
            return self._layers[layer]
        device = self.queries[layer].device
        picked = torch.arange(self.shape[2], device=device)[rows if rows is not None else slice(None)].reshape(-1)
        queries = self.queries[layer][:, picked]                                  # (H, R, d), R = len(picked)
        keys = self.keys[layer]                                                   # (Hkv, N, d)
        group = queries.shape[0] // keys.shape[0]
        keys = keys.repeat_interleave(group, dim=0)                               # (H, N, d)
        scores = torch.matmul(queries, keys.transpose(1, 2)) * self.scales[layer]  # (H, R, N)
        allowed = _allowed(self.layer_types[layer], picked + self.offset, self.shape[3], self.offset)  # (R, N)
        scores = scores.masked_fill(~allowed, float("-inf"))
        norms = self.log_norms[layer]
        if norms is None:
            weights = torch.softmax(scores, dim=-1)                               # (H, R, N)
        else:
            weights = torch.exp(scores - norms[:, picked, None])                  # (H, R, N): softmax over all keys
        return weights.cpu().numpy()                                              # only what the view asked for

    def per_layer(self, key: Hashable, reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """np.stack([reduce(attention[l]) for each layer]), computed once per `key` for this result."""
        if key not in self._reductions:
            self._reductions[key] = np.stack([reduce(self.layer(layer)) for layer in range(self.shape[0])])
        return self._reductions[key]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            if any(_few(index) and not isinstance(index, (int, np.integer)) for index in rest[1:]) \
                    and not isinstance(rest[0], (int, np.integer)):
                # numpy: an integer and an array index apart move the indexed dims first; do exactly what it does
                return self.layer(int(first))[None][(np.array(0), *rest)]
            return self._layer_part(int(first), rest)
        if isinstance(first, slice):
            return np.stack([self._layer_part(layer, rest) for layer in range(self.shape[0])[first]])
        return np.asarray(self)[key]  # anything else (an ellipsis, a list of layers): from the whole array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole.astype(dtype) if dtype is not None else whole

    def _layer_part(self, layer: int, rest: tuple) -> np.ndarray:
        """One layer indexed by (head, query, key) `rest`, computing only the asked rows when they are few."""
        if len(rest) >= 2 and _few(rest[1]):
            heads_key = rest[0]
            part = self.rows(layer, rest[1])                                      # (H, R, N)
            if isinstance(rest[1], (int, np.integer)):
                part = part[:, 0]                                                  # (H, N)
                return part[(heads_key, *rest[2:])]
            return part[(heads_key, slice(None), *rest[2:])]
        return self.layer(layer)[rest] if rest else self.layer(layer)


def keep_queries_keys(model: Any, input_ids: torch.Tensor, keep_last: int | None = None) -> OnDemandAttention:
    """One forward pass over `input_ids` (1, T) on the model's current kernel, keeping every layer's queries and
    keys (of the last `keep_last` positions) instead of its attention. Call with the model's lock held."""
    adapter = adapter_for(model)
    if not can_keep_queries_keys(model):
        raise UnsupportedError(f"{adapter.facts.short_name} cannot rebuild its queries and keys for on-demand "
                               "attention.")
    layers = len(adapter.layers(model))
    layer_types = adapter.layer_types(model.config, layers)
    total = int(input_ids.shape[-1])
    kept = total if keep_last is None else min(total, keep_last)
    offset = total - kept
    queries: list[Any] = [None] * layers
    keys: list[Any] = [None] * layers
    norms: list[Any] = [None] * layers
    scales = [adapter.attention_scale(model, layer) for layer in range(layers)]

    def hook_for(layer: int) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            hidden = (args[0] if args else kwargs["hidden_states"])[0]           # (T, D)
            q, k = _queries_keys(adapter, model, layer, hidden, kwargs.get("position_embeddings"))
            q, k = q.float(), k.float()                                          # (H, T, d), (Hkv, T, d)
            if offset:
                norms[layer] = _log_norms(q[:, offset:], k, scales[layer], layer_types[layer], offset)
            queries[layer], keys[layer] = q[:, offset:].contiguous(), k[:, offset:].contiguous()
        return hook

    handles = [adapter.self_attention(model, layer).register_forward_pre_hook(hook_for(layer), with_kwargs=True)
               for layer in range(layers)]
    try:
        with torch.inference_mode():
            model(input_ids=input_ids, **_forward_kwargs(model))
    finally:
        for handle in handles:
            handle.remove()
    if any(q is None for q in queries):
        raise UnsupportedError("Could not capture the queries and keys of every layer of this model.")
    return OnDemandAttention(queries, keys, scales, layer_types, norms, offset)


def _queries_keys(adapter: FamilyAdapter, model: Any, layer: int, hidden: torch.Tensor,
                  position_embeddings: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """X (T, D) → Q (H, T, d), K (Hkv, T, d) as the attention module computes them (norms, then RoPE)."""
    from service.explain.recompute import apply_rope

    q, k, _ = adapter.project_qkv(model, layer, hidden)                          # (T, H, d), (T, Hkv, d)
    norms = adapter.qk_norms(model, layer)
    if norms is not None:
        q, k = adapter.apply_norm(norms[0], q), adapter.apply_norm(norms[1], k)
    if adapter.facts.uses_rope:
        if position_embeddings is None:
            raise UnsupportedError("Could not capture the rotary position embeddings (cos, sin) of this model.")
        cos, sin = position_embeddings                                           # (1, T, d) each
        q, k = apply_rope(q, cos[0], sin[0]), apply_rope(k, cos[0], sin[0])
    return q.transpose(0, 1), k.transpose(0, 1)


def _log_norms(queries: torch.Tensor, keys: torch.Tensor, scale: float, layer_type: str,
               offset: int) -> torch.Tensor:
    """(H, N) log Σ_j exp(q·k_j · scale) over every visible key j of the kept queries (positions offset…)."""
    group = queries.shape[0] // keys.shape[0]
    scores = torch.matmul(queries, keys.repeat_interleave(group, dim=0).transpose(1, 2)) * scale  # (H, N, T)
    positions = torch.arange(queries.shape[1], device=queries.device) + offset
    scores = scores.masked_fill(~_allowed(layer_type, positions, keys.shape[1], 0), float("-inf"))
    return torch.logsumexp(scores, dim=-1)                                      # (H, N)


def _allowed(layer_type: str, query_positions: torch.Tensor, keys: int, first_key: int) -> torch.Tensor:
    """(R, keys) True where the query at an absolute position may see key first_key + j (causal, window)."""
    causal, window = parse_layer_type(layer_type)
    key_positions = torch.arange(keys, device=query_positions.device) + first_key  # (keys,)
    allowed = torch.ones(len(query_positions), keys, dtype=torch.bool, device=query_positions.device)
    if causal:
        allowed &= key_positions[None, :] <= query_positions[:, None]
    if window is not None:
        allowed &= key_positions[None, :] > query_positions[:, None] - window
    return allowed


def _forward_kwargs(model: Any) -> dict[str, Any]:
    """No KV cache and only the last position's logits: the pass is for the hooks."""
    import inspect

    kwargs: dict[str, Any] = {"use_cache": False}
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        kwargs["logits_to_keep"] = 1
    return kwargs


def _few(index: Any) -> bool:
    """Whether a query index picks a few rows (an int, a list, an array), not a slice of them."""
    return isinstance(index, (int, np.integer, list, np.ndarray))


def _index(layer: Any, count: int) -> int:
    layer = int(layer)
    if not -count <= layer < count:
        raise IndexError(f"layer {layer} is out of range: there are {count} layers")
    return layer % count
