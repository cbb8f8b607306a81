"""Model families as adapters: `adapter_for(model)` says where that family keeps each part (see base.FamilyAdapter).

Adding a family = one module here with a FamilyAdapter subclass, one line in ADAPTERS, and its tests
(tests/test_families.py). A family without an adapter is refused by name.
"""

from __future__ import annotations

from typing import Any

from service.errors import UnsupportedError
from service.families.base import FamilyAdapter, FamilyFacts, parse_layer_type
from service.families.bert import BertAdapter
from service.families.distilbert import DistilBertAdapter
from service.families.gemma3 import Gemma3Adapter
from service.families.gpt2 import GPT2Adapter
from service.families.marian import MarianAdapter

# config.model_type → adapter, in the order messages list them
ADAPTERS: dict[str, FamilyAdapter] = {
    adapter.model_type: adapter
    for adapter in (Gemma3Adapter(), BertAdapter(), GPT2Adapter(), DistilBertAdapter(), MarianAdapter())
}


def family_of(model: Any) -> str:
    """config.model_type of `model` (its class name when it has no config)."""
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) or type(model).__name__


def supported_families() -> tuple[str, ...]:
    """The model_types that have an adapter."""
    return tuple(ADAPTERS)


def listing(adapters: list[FamilyAdapter]) -> str:
    """'Gemma-3, BERT/MiniLM, GPT-2 and DistilBERT' for a message."""
    names = [adapter.facts.short_name for adapter in adapters]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def adapter_for(model: Any) -> FamilyAdapter:
    """The adapter of `model`'s family, after its variant checks; UnsupportedError naming the family otherwise."""
    family = family_of(model)
    adapter = ADAPTERS.get(family)
    if adapter is None:
        raise UnsupportedError(
            f"{family} is not supported: Attention Atlas knows the model families "
            f"{listing(list(ADAPTERS.values()))} ({', '.join(ADAPTERS)}). Pick a model of one of those families, "
            f"or add an adapter for {family} in service/families/."
        )
    adapter.check(getattr(model, "config", None))
    return adapter


__all__ = ["ADAPTERS", "FamilyAdapter", "FamilyFacts", "adapter_for", "family_of", "listing", "parse_layer_type",
           "supported_families"]
