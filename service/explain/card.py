"""The architecture card: a JSON-ready description of a loaded model, generated from its config via its adapter."""

from __future__ import annotations

from typing import Any

from service.families import adapter_for


def architecture_card(model: Any) -> dict[str, Any]:
    """Family, sizes, layer types, norm placement, positions, … of `model` (viz.explain draws it as a diagram).

    Works for every family with an adapter (service/families/); UnsupportedError naming the family otherwise.
    """
    adapter = adapter_for(model)
    config = model.config
    facts = adapter.facts
    num_layers = len(adapter.layers(model))
    card: dict[str, Any] = {
        "family": facts.name,
        "model_type": facts.model_type,
        "architecture": facts.architecture,
        "num_layers": num_layers,
        "num_heads": adapter.num_heads(config),
        "num_key_value_heads": adapter.key_value_heads(config),
        "head_dim": adapter.head_dim(config),
        "hidden_size": adapter.hidden_size(config),
        "vocab_size": int(config.vocab_size),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "layer_types": adapter.layer_types(config, num_layers),
        "norm_placement": facts.norm_placement,
        "norm_name": facts.norm_name,
        "attention_scale": adapter.attention_scale(model, 0),
        "uses_rope": facts.uses_rope,
        "uses_qk_norm": facts.uses_qk_norm,
        "tied_embeddings": adapter.tied_embeddings(model),
    }
    card.update(adapter.describe(model))
    return card
