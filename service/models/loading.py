"""Model loading: the LoadedModel record, device/dtype choice, and the hub profile's config and loader."""

from __future__ import annotations

import contextlib
import os
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from service.errors import InvalidInputError, ModelLoadError, UnsupportedError
from service.result import Architecture

Progress = Callable[[float, str], None]

DEFAULT_HUB_CONFIG = Path(__file__).with_name("hub_models.toml")
HUB_CONFIG_ENV = "ATLAS_HUB_CONFIG"
# Hub tasks: generation, qa, sentiment, and one model per translation direction.
HUB_KEYS = ("generation", "qa", "sentiment", "translation.en-zh", "translation.zh-en")
_AUTO_CLASS = {
    "generation": "AutoModelForCausalLM",
    "qa": "AutoModelForQuestionAnswering",
    "sentiment": "AutoModelForSequenceClassification",
    "translation.en-zh": "AutoModelForSeq2SeqLM",
    "translation.zh-en": "AutoModelForSeq2SeqLM",
}
_ARCHITECTURE: dict[str, Architecture] = {
    "generation": "decoder",
    "qa": "encoder",
    "sentiment": "encoder",
    "translation.en-zh": "encoder-decoder",
    "translation.zh-en": "encoder-decoder",
}
DOWNLOAD_FIX = "Run `python -m service.models.download` once while online, or switch to the embedded profile (--profile embedded)"


@dataclass
class LoadedModel:
    """A model ready to run: weights, tokenizer, and the lock every request holds while using it."""

    model: Any
    tokenizer: Any
    name: str
    architecture: Architecture
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def turn(self) -> Iterator[LoadedModel]:
        """The model to one request: its lock held, in inference mode. When the request is done, the free heap goes
        back to the OS (service/heap.py): a 40-token generation leaves ~135 MB of small freed tensors (the growing
        KV cache, per-step rows) that glibc would keep resident, and under a pool of worker threads each arena keeps
        its own. Requests that share a batched forward give it back when their run ends (backends/fewshot.py)."""
        from service.attention.capture import inference_mode
        from service.heap import give_back_free_heap

        try:
            with self.lock, inference_mode():
                yield self
        finally:
            give_back_free_heap()                 # ~10 ms on the embedded app's heap


@dataclass(frozen=True)
class HubModelSpec:
    """One hub model: repository id (or a local directory) and the revision to pin."""

    key: str
    model: str
    revision: str | None = None
    source_prefix: str = ""  # text put before every input, e.g. ">>cmn_Hans<< " for multi-target Marian models


def resolve_device(device: str) -> str:
    """'cpu' (default), 'cuda' (error if unavailable) or 'auto' (cuda when available).

    torch is imported only to ask about CUDA: on "cpu" the app serves its page before torch loads (~2 s saved).
    """
    if not isinstance(device, str):
        raise InvalidInputError(f"device must be 'cpu', 'cuda' or 'auto', not {device!r}.")
    name = device.strip().lower()
    if name == "cpu":
        return "cpu"
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UnsupportedError(
                "CUDA was requested but no CUDA GPU is available to PyTorch here. Use --device cpu "
                "(or install a CUDA build of torch on a machine with an NVIDIA GPU)."
            )
        return name
    raise UnsupportedError(f"Unknown device {device!r}; use 'cpu', 'cuda' or 'auto'.")


def dtype_for(device: str) -> Any:
    """float32 on CPU, bfloat16 on CUDA."""
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def prepare_model(model: Any, device: str) -> Any:
    """Move to device/dtype, switch to eval mode and the fast (sdpa) attention kernel."""
    model = model.to(device=device, dtype=dtype_for(device))
    model.eval()
    set_attention_kernel(model, "sdpa")
    return model


def set_attention_kernel(model: Any, implementation: str) -> None:
    """Switch eager/sdpa at run time. Call only while holding the model's lock."""
    if getattr(model.config, "_attn_implementation", None) != implementation:
        model.set_attn_implementation(implementation)


# --- hub config -----------------------------------------------------------------------------------
def load_hub_config(path: str | os.PathLike[str] | None = None) -> dict[str, HubModelSpec]:
    """Hub model specs: service/hub_models.toml, overridden per task by `path` or $ATLAS_HUB_CONFIG."""
    specs = _read_specs(DEFAULT_HUB_CONFIG)
    user_path = path or os.environ.get(HUB_CONFIG_ENV)
    if user_path:
        user_file = Path(user_path).expanduser()
        if not user_file.is_file():
            raise InvalidInputError(f"Hub model config {user_file} does not exist; pass an existing TOML file.")
        specs.update(_read_specs(user_file))
    return specs


def _read_specs(path: Path) -> dict[str, HubModelSpec]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(f"Hub model config {path} is not valid TOML: {error}. Fix the file.") from error
    specs: dict[str, HubModelSpec] = {}
    for key in HUB_KEYS:
        section: Any = data
        for part in key.split("."):
            section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict) or "model" not in section:
            continue
        model = section["model"]
        revision = section.get("revision")
        prefix = section.get("source_prefix", "")
        if not isinstance(model, str) or not isinstance(revision, (str, type(None))) or not isinstance(prefix, str):
            raise InvalidInputError(f"In {path}, [{key}] needs model = \"owner/name\" and revision = \"<commit>\".")
        specs[key] = HubModelSpec(key=key, model=model, revision=revision or None, source_prefix=prefix)
    return specs


def load_hub_model(spec: HubModelSpec, device: str, progress: Progress | None = None) -> LoadedModel:
    """Load one hub model (safetensors only, never remote code); ModelLoadError when it cannot be loaded."""
    import transformers

    auto_class = getattr(transformers, _AUTO_CLASS[spec.key])
    local_dir = Path(spec.model).expanduser()
    is_local = local_dir.is_dir()
    source = str(local_dir) if is_local else spec.model
    options: dict[str, Any] = {"trust_remote_code": False}
    if not is_local and spec.revision:
        options["revision"] = spec.revision
    if progress:
        progress(0.0, f"Loading {spec.model}")
    try:
        tokenizer = _from_pretrained(transformers.AutoTokenizer, source, options)
        if progress:
            progress(0.3, f"Loading {spec.model} weights")
        model = _from_pretrained(
            auto_class,
            source,
            {**options, "use_safetensors": True, "dtype": dtype_for(device), "attn_implementation": "sdpa"},
        )
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, ImportError, RuntimeError) as error:
        # A local model directory is named by its last part only: the server's paths are not the visitor's business.
        shown = local_dir.name if is_local else spec.model
        reason = _short_reason(error).replace(str(local_dir), shown) if is_local else _short_reason(error)
        raise ModelLoadError(shown, reason, DOWNLOAD_FIX) from error
    model = prepare_model(model, device)
    if progress:
        progress(1.0, f"Loaded {spec.model}")
    return LoadedModel(model, tokenizer, spec.model, _ARCHITECTURE[spec.key], device)


def _from_pretrained(loader: Any, source: str, options: dict[str, Any]) -> Any:
    """from_pretrained from a local directory or the local cache first; from the Hub only when not offline."""
    if Path(source).is_dir():
        return loader.from_pretrained(source, local_files_only=True, **options)
    try:
        return loader.from_pretrained(source, local_files_only=True, **options)
    except OSError as cached_error:
        if _offline():
            raise ModelLoadError(
                source, "it is not in the local Hugging Face cache and HF_HUB_OFFLINE is set", DOWNLOAD_FIX
            ) from cached_error
    return loader.from_pretrained(source, **options)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _short_reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if "safetensors" in text.lower():
        return f"no safetensors weights were found ({text[:200]}); only safetensors are loaded, for safety"
    return text[:300].rstrip(".")
