"""One backend per profile, picked once when a ModelService is made: the only place that looks at the profile name.

    embedded      FewShotBackend on Gemma-3-270M (the PyPI package), Explain also on the packaged MiniLM
    hub           SpecialistBackend on the Hub models of service/models/hub_models.toml
    tiny          SpecialistBackend on tiny random GPT-2 / DistilBERT / Marian (tests)
    tiny-fewshot  FewShotBackend on a tiny random Gemma-3 (tests of the few-shot path)
"""

from __future__ import annotations

from typing import Callable

from service.backends.base import Backend
from service.backends.fewshot import FewShotBackend
from service.backends.specialists import SpecialistBackend
from service.models.sources import EmbeddedSource, HubSource, TinySource

BackendFactory = Callable[[str, int, "str | None"], Backend]

BACKENDS: dict[str, BackendFactory] = {
    "embedded": lambda device, cap, hub_config: FewShotBackend(
        EmbeddedSource(), device, cap, model_key="embedded", explain_keys={"minilm": "minilm"}),
    "hub": lambda device, cap, hub_config: SpecialistBackend(HubSource(hub_config), device, cap),
    "tiny": lambda device, cap, hub_config: SpecialistBackend(TinySource(), device, cap),
    "tiny-fewshot": lambda device, cap, hub_config: FewShotBackend(TinySource(), device, cap, model_key="fewshot"),
}


def make_backend(profile: str, device: str, max_attention_tokens: int, hub_config: str | None = None) -> Backend:
    """The backend of a profile (one of BACKENDS; the caller has checked the name)."""
    return BACKENDS[profile](device, max_attention_tokens, hub_config)


__all__ = ["BACKENDS", "Backend", "FewShotBackend", "SpecialistBackend", "make_backend"]
