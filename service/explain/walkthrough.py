"""explain_attention: validate, run ONE eager forward pass with hooks, recompute the head, assemble an ExplainResult."""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Any

import numpy as np
import torch

from service.errors import InvalidInputError, UnsupportedError
from service.explain.card import architecture_card
from service.explain.display import display
from service.attention.capture import eager_attention
from service.explain.hooks import LayerHooks
from service.explain.recompute import recompute
from service.explain.result import TOLERANCE, ExplainResult
from service.families import ADAPTERS, FamilyAdapter, adapter_for, family_of, listing, parse_layer_type
from service.validation import check_index

MAX_EXPLAIN_TOKENS = 64


def explainable_families() -> tuple[str, ...]:
    """model_types whose adapter the recompute covers."""
    return tuple(family for family, adapter in ADAPTERS.items() if adapter.explainable)


def explain_adapter(model: Any) -> FamilyAdapter:
    """The adapter of `model` if Explain covers its family; UnsupportedError naming the family otherwise."""
    family = family_of(model)
    adapter = ADAPTERS.get(family)
    if adapter is None or not adapter.explainable:
        covered = listing([ADAPTERS[name] for name in explainable_families()])
        why = (f" Explain follows one self-attention stack; {adapter.facts.name} is {adapter.facts.architecture}."
               if adapter is not None else "")
        raise UnsupportedError(f"Explain supports {covered}; {family} is not supported.{why} "
                               "Pick one of those models in the Explain tab.")
    return adapter_for(model)  # the family's variant checks (bidirectional Gemma-3, BERT as a decoder)


def _index(value: Any, field: str, size: int, context: str) -> int:
    """check_index, with a sentence saying where the range comes from."""
    try:
        return check_index(value, field, size)
    except InvalidInputError as error:
        raise InvalidInputError(f"{error} {context}") from None


def explain_attention(
    model: Any,
    tokenizer: Any,
    text: str,
    layer: int,
    head: int,
    position: int,
    model_name: str,
    lock: threading.Lock | threading.RLock | None = None,
) -> ExplainResult:
    """Recompute head `head` of layer `layer` for the query token at index `position` and verify it.

    `position` may be negative (Python style: -1 is the last token). Text is cut to MAX_EXPLAIN_TOKENS tokens.
    Raises InvalidInputError for empty text or out-of-range layer/head/position, UnsupportedError for other
    model families. Pass the model's `lock` (or hold it) — the attention implementation is switched while inside.
    """
    adapter = explain_adapter(model)
    config = model.config
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("Type a sentence to explain: the text is empty.")
    num_layers = len(adapter.layers(model))
    num_heads = adapter.num_heads(config)
    layer = _index(layer, "layer", num_layers, f"The model has {num_layers} layers.")
    head = _index(head, "head", num_heads, f"Each layer has {num_heads} heads.")

    encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=MAX_EXPLAIN_TOKENS)
    token_ids = [int(i) for i in encoded["input_ids"][0].tolist()]
    count = len(token_ids)
    if count == 0:
        raise InvalidInputError("The text produced no tokens; type a sentence to explain.")
    if isinstance(position, (int, np.integer)) and not isinstance(position, bool) and -count <= position < 0:
        position = count + int(position)
    position = _index(position, "position", count, f"The text has {count} tokens (−1 is the last one).")
    notes: list[str] = []
    full_count = len(tokenizer(text, truncation=False)["input_ids"])
    if full_count > count:
        notes.append(f"The text was cut to its first {count} tokens (of {full_count}) for this explanation.")

    device = next(model.parameters()).device
    inputs = {name: tensor.to(device) for name, tensor in encoded.items() if name in adapter.input_names}
    hooks = LayerHooks(adapter, model, layer)
    guard = lock if lock is not None else contextlib.nullcontext()
    try:
        with guard, torch.inference_mode(), eager_attention(model):
            was_training = model.training
            model.eval()
            try:
                outputs = model(**inputs, **adapter.forward_kwargs(model))
            finally:
                model.train(was_training)
            attentions = outputs.attentions
            if not attentions:
                raise UnsupportedError(f"{model_name} returned no attention weights even in eager mode.")
            model_rows = attentions[layer][0, :, position, :].detach()  # (H, T)
            hooks.tensors["input_ids"] = inputs["input_ids"][0]        # (T,)
            stages = recompute(adapter, model, hooks.tensors, layer, head, position, model_rows)
    finally:
        hooks.remove()

    tokens, special = display(tokenizer, token_ids)
    notes.extend(_notes(adapter, model, layer, head, position, stages["layer_type"]))
    d, D, H = adapter.head_dim(config), adapter.hidden_size(config), num_heads
    kv_heads = adapter.key_value_heads(config)
    shapes = {
        "X": [count, D], "W_Q": [D, d], "W_K": [D, d], "W_V": [D, d], "Q": [count, d], "K": [count, d],
        "V": [count, d], "scores": [count], "attention_row": [count], "head_output": [d],
        "concat": [H * d], "W_O": [H * d, D], "attention_output": [D],
    }
    max_abs_diff = stages.pop("max_abs_diff")
    facts = adapter.facts
    return ExplainResult(
        model_name=model_name, family=facts.model_type, architecture=facts.architecture,
        text=text, tokens=tokens, token_ids=token_ids, special=special, layer=layer, head=head, position=position,
        kv_head=head // (H // kv_heads), num_layers=num_layers,
        num_heads=H, num_key_value_heads=kv_heads, head_dim=d, hidden_size=D,
        scale=adapter.attention_scale(model, layer), embedding_scale=adapter.embedding_scale(model),
        norm_placement=facts.norm_placement, max_abs_diff=max_abs_diff,
        passed=bool(max_abs_diff < TOLERANCE), shapes=shapes, notes=notes,
        uses_rope=facts.uses_rope, uses_qk_norm=facts.uses_qk_norm,
        card=architecture_card(model), facts=facts.to_json(), **stages,
    )


def _notes(adapter: FamilyAdapter, model: Any, layer: int, head: int, position: int, layer_type: str) -> list[str]:
    """One sentence per thing that makes this layer differ from textbook attention."""
    config = model.config
    notes: list[str] = []
    hidden = adapter.hidden_size(config)
    scale = adapter.embedding_scale(model)
    if scale is not None:
        is_root = math.isclose(scale, math.sqrt(hidden), rel_tol=1e-3)
        factor = f"√{hidden} ≈ {scale:.3f}" if is_root else f"{scale:.4g}"
        notes.append(f"{adapter.facts.name} multiplies every embedding row by {factor}.")
    _, window = parse_layer_type(layer_type)
    if window is not None:
        notes.append(f"Layer {layer} uses a sliding window of {window}: token {position} sees keys "
                     f"{max(0, position - window + 1)}–{position}.")
    heads, kv_heads = adapter.num_heads(config), adapter.key_value_heads(config)
    if kv_heads < heads:
        group = heads // kv_heads
        notes.append(f"Grouped-query attention: {group} query heads share each key/value head; "
                     f"head {head} uses key/value head {head // group}.")
    notes.extend(adapter.notes(model, layer))
    return notes
