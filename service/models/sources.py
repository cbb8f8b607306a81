"""Where a profile's models come from: the embedded package files, the Hugging Face Hub, or tiny models built in code.

A source maps a model key ("embedded", "minilm", "generation", "translation.en-zh", …) to a name and a loader.
Backends ask a source for models by key; they never ask which source it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from service.errors import AtlasError, ModelLoadError
from service.models.loading import HubModelSpec, LoadedModel, Progress, load_hub_config, load_hub_model, prepare_model

EMBEDDED_MODEL_NAME = "google/gemma-3-270m"


class ModelSource(Protocol):
    """Names and loads models by key."""

    def name(self, key: str) -> str: ...

    def load(self, key: str, device: str, progress: Progress | None) -> LoadedModel: ...

    def config_on_disk(self, key: str) -> Path | None:
        """config.json of the model when it is on disk already (nothing is converted or downloaded to find it)."""
        ...

    def source_prefix(self, key: str) -> str:
        """Text put before every input of this model (multi-target Marian models), usually ""."""
        ...


class EmbeddedSource:
    """Gemma-3-270M from the PyPI GGUF package (converted once to safetensors), and the packaged MiniLM encoder."""

    def name(self, key: str) -> str:
        from service.models.minilm import MINILM_NAME

        return MINILM_NAME if key == "minilm" else EMBEDDED_MODEL_NAME

    def load(self, key: str, device: str, progress: Progress | None) -> LoadedModel:
        if key == "minilm":
            from service.models.minilm import MINILM_NAME, load_minilm

            model, tokenizer = load_minilm(device=device)
            return LoadedModel(model, tokenizer, MINILM_NAME, "encoder", device)
        from service.models.embedded import load_embedded_gemma

        try:
            model, tokenizer = load_embedded_gemma(device=device, progress=progress)
        except AtlasError:
            raise
        except (OSError, ImportError, ValueError, RuntimeError) as error:
            raise ModelLoadError(
                EMBEDDED_MODEL_NAME, " ".join(str(error).split())[:300] or type(error).__name__,
                "Reinstall the requirements (pip install -r requirements.txt) or use --profile hub",
            ) from error
        return LoadedModel(prepare_model(model, device), tokenizer, EMBEDDED_MODEL_NAME, "decoder", device)

    def config_on_disk(self, key: str) -> Path | None:
        try:
            if key == "minilm":
                from service.models.minilm import minilm_dir

                path = minilm_dir() / "config.json"
            else:
                from service.models.embedded import converted_model_dir

                path = converted_model_dir() / "config.json"
        except (AtlasError, ImportError, OSError):
            return None
        return path if path.is_file() else None

    def source_prefix(self, key: str) -> str:
        return ""


class HubSource:
    """Task specialists from the Hub, ids and pinned revisions in service/models/hub_models.toml (or an override)."""

    def __init__(self, hub_config: str | None = None) -> None:
        self._specs: dict[str, HubModelSpec] = load_hub_config(hub_config)

    def spec(self, key: str) -> HubModelSpec:
        spec = self._specs.get(key)
        if spec is None:
            raise ModelLoadError(
                key, "the hub model config has no entry for it",
                "Add a [" + key + "] section with model and revision to service/models/hub_models.toml",
            )
        return spec

    def name(self, key: str) -> str:
        return self.spec(key).model

    def load(self, key: str, device: str, progress: Progress | None) -> LoadedModel:
        return load_hub_model(self.spec(key), device, progress)

    def config_on_disk(self, key: str) -> Path | None:
        return None

    def source_prefix(self, key: str) -> str:
        return self.spec(key).source_prefix


class TinySource:
    """Tiny random models of the real families, built in code (tests only: their answers are noise)."""

    def name(self, key: str) -> str:
        from service.models.tiny import TINY_NAMES

        return TINY_NAMES[key]

    def load(self, key: str, device: str, progress: Progress | None) -> LoadedModel:
        from service.models.tiny import load_tiny

        if progress:
            progress(0.0, f"Building {self.name(key)}")
        loaded = load_tiny(key, device)
        if progress:
            progress(1.0, f"Built {self.name(key)}")
        return loaded

    def config_on_disk(self, key: str) -> Path | None:
        return None

    def source_prefix(self, key: str) -> str:
        return ""
