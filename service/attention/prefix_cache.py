"""Few-shot prefix reuse: the instruction and demonstrations run through the model once, then every request that
starts with the same prefix runs only its own tokens on a copy of the prefix's KV cache.

The attention stays exactly the full-prompt attention: the prefix's own (p × p) block is kept from its one eager
pass, and each request's rows come from its forward over the cached keys (causal: a prefix never sees what
follows it). `Prefix.full_attention(rows)` puts the two together as one pass over the whole sequence would.
Entries are kept per model (weakly) and per tokenizer and prefix text, least recently used dropped first. A prefix
that extends a cached one (the fixed demonstrations, then the ones chosen for an input: a demonstration set) runs
only its own tokens on the cached one's keys (`lookup(..., extends=...)`).
`ATTENTION_ATLAS_PREFIX_REUSE=0` turns reuse off (every prompt runs whole, as before it: the load benchmark's
"before" path).
"""

from __future__ import annotations

import copy
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MAX_PREFIXES_PER_MODEL = 16         # Gemma-3-270M: ~3.7 MB of keys/values + ~2.9 MB of attention per 100 tokens
PREFIX_REUSE_VARIABLE = "ATTENTION_ATLAS_PREFIX_REUSE"


def prefix_reuse_from_environment() -> bool:
    """False when ATTENTION_ATLAS_PREFIX_REUSE is 0 (reuse off), True when it is unset or 1."""
    value = os.environ.get(PREFIX_REUSE_VARIABLE, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{PREFIX_REUSE_VARIABLE} must be 0 (reuse off) or 1, got {value!r}")
    return value != "0"


@dataclass
class Prefix:
    """A prompt prefix that has run once: its ids, KV cache and (when captured) its attention block."""

    ids: list[int]
    cache: Any                        # transformers DynamicCache after the prefix
    block: list[Any]                  # per layer (head, p, p): the prefix's causal attention (eager)

    def fresh_cache(self) -> Any:
        """A copy of the KV cache a request may extend (the kept one is never changed)."""
        return copy.deepcopy(self.cache)

    def full_attention(self, suffix_attentions: Any) -> list[Any]:
        """Per layer (1, head, p + S, p + S): the prefix block and the rows of `suffix_attentions` — per layer
        (1, head, S, keys) from a forward of S new tokens over the cache, whose keys are the last `keys` positions
        (a sliding-window layer keeps fewer) — as if the whole sequence had run in one eager pass."""
        import torch

        p = len(self.ids)
        layers = []
        for prefix_block, rows in zip(self.block, suffix_attentions):
            heads, new, keys = rows.shape[1], rows.shape[2], rows.shape[3]
            total = p + new
            full = torch.zeros((1, heads, total, total), dtype=rows.dtype, device=rows.device)
            full[0, :, :p, :p] = prefix_block                                # (head, p, p)
            full[0, :, p:, total - keys:] = rows[0]                          # (head, S, keys)
            layers.append(full)
        return layers


class PrefixCache:
    """Prefixes by (model, tokenizer, prefix text). `lookup` runs a new prefix once; hold the model's lock."""

    def __init__(self, max_entries: int = MAX_PREFIXES_PER_MODEL, enabled: bool | None = None) -> None:
        self.max_entries = max_entries
        self.enabled = prefix_reuse_from_environment() if enabled is None else enabled
        self._entries: "weakref.WeakKeyDictionary[Any, OrderedDict[tuple[int, str], Prefix]]" = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def lookup(self, model: Any, tokenizer: Any, prefix_text: str, prompt_ids: list[int],
               extends: Prefix | None = None, run_missing: bool = True) -> Prefix | None:
        """The cached prefix of a prompt whose ids start with the prefix's own ids, or None when tokenising
        prompt and prefix apart would split a token differently (then the caller runs the whole prompt), or when
        reuse is off. A new prefix whose ids start with those of `extends` (a cached, shorter one) runs only the
        tokens after it; with run_missing=False a prefix not cached yet is None (the caller runs its tokens with
        its own, and may `store` it)."""
        if not self.enabled:
            return None
        key = (id(tokenizer), prefix_text)
        with self._lock:
            per_model = self._entries.setdefault(model, OrderedDict())
            entry = per_model.get(key)
            if entry is not None:
                per_model.move_to_end(key)
        if entry is None and not run_missing:
            return None
        if entry is None:
            prefix_ids = tokenizer(prefix_text).input_ids
            if not 0 < len(prefix_ids) < len(prompt_ids) or prompt_ids[: len(prefix_ids)] != prefix_ids:
                return None
            shorter = extends is not None and len(extends.ids) < len(prefix_ids) and (
                prefix_ids[: len(extends.ids)] == extends.ids)
            entry = _run_prefix(model, prefix_ids, extends if shorter else None)
            with self._lock:
                self.misses += 1
            self.store(model, tokenizer, prefix_text, entry)
        else:
            with self._lock:
                self.hits += 1
        if prompt_ids[: len(entry.ids)] != entry.ids or len(prompt_ids) <= len(entry.ids):
            return None
        return entry

    def store(self, model: Any, tokenizer: Any, prefix_text: str, prefix: Prefix) -> None:
        """Keep `prefix` (the ids, KV cache and attention block of `prefix_text`, however it was computed) for later
        lookups; the least recently used entry leaves first."""
        if not self.enabled:
            return
        with self._lock:
            per_model = self._entries.setdefault(model, OrderedDict())
            per_model[(id(tokenizer), prefix_text)] = prefix
            per_model.move_to_end((id(tokenizer), prefix_text))
            while len(per_model) > self.max_entries:
                per_model.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries = weakref.WeakKeyDictionary()


def _run_prefix(model: Any, prefix_ids: list[int], shorter: Prefix | None = None) -> Prefix:
    """One eager forward over the prefix (after `shorter`, on a copy of its cache, when given): its KV and attention
    block."""
    import torch
    from transformers import DynamicCache

    from service.attention.capture import eager_attention

    start = len(shorter.ids) if shorter is not None else 0
    cache = shorter.fresh_cache() if shorter is not None else DynamicCache(config=model.config)
    with torch.inference_mode(), eager_attention(model):
        output = model(input_ids=torch.tensor([prefix_ids[start:]], device=model.device),            # (1, p - start)
                       position_ids=torch.arange(start, len(prefix_ids), device=model.device)[None],
                       cache=cache, use_cache=True, output_attentions=True, logits_to_keep=1)
    attentions = shorter.full_attention(output.attentions) if shorter is not None else output.attentions
    return Prefix(list(prefix_ids), output.cache, [layer[0] for layer in attentions])          # (head, p, p) each


PREFIXES = PrefixCache()
