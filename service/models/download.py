"""Pre-download every hub-profile model (safetensors only) so a laptop can run the hub profile offline.

    python -m service.models.download [--config PATH]

Prints, per model, where its files are and how large they are; exits 1 if any model could not be fetched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from service.errors import AtlasError
from service.models.loading import HubModelSpec, load_hub_config

# Weights as safetensors, plus configuration and tokenizer files; never pickled weights (*.bin, *.pt, *.h5, ...).
ALLOWED_FILES = [
    "*.safetensors",
    "*.safetensors.index.json",
    "*.json",
    "*.txt",
    "*.model",
    "*.spm",
    "*.tiktoken",
]


def download_model(spec: HubModelSpec, snapshot_download: Callable[..., str] | None = None) -> str:
    """Fetch one model's safetensors and tokenizer files into the Hugging Face cache; returns a one-line report."""
    if Path(spec.model).expanduser().is_dir():
        return f"{spec.key}: {spec.model} is a local directory, nothing to download"
    if snapshot_download is None:
        from huggingface_hub import snapshot_download
    folder = Path(snapshot_download(repo_id=spec.model, revision=spec.revision, allow_patterns=ALLOWED_FILES))
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise RuntimeError(
            f"{spec.model}@{spec.revision or 'main'} has no .safetensors weights; point `revision` in the config "
            "at a revision that has them (for example the safetensors conversion pull request, refs/pr/<n>)"
        )
    size_mb = sum(path.stat().st_size for path in folder.iterdir() if path.is_file()) / 1e6
    return f"{spec.key}: {spec.model} at revision {folder.name} ({size_mb:.0f} MB) in {folder}"


def main(argv: Sequence[str] | None = None, snapshot_download: Callable[..., str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download the hub profile's models (safetensors only).")
    parser.add_argument("--config", help="TOML overriding service/models/hub_models.toml per task")
    args = parser.parse_args(argv)
    try:
        specs = load_hub_config(args.config)
    except AtlasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failures = 0
    for spec in specs.values():
        print(f"Downloading {spec.model} (revision {spec.revision or 'main'}) for {spec.key}...", flush=True)
        try:
            print("  done: " + download_model(spec, snapshot_download), flush=True)
        except Exception as error:  # noqa: BLE001 - report every model, then fail at the end
            failures += 1
            reason = " ".join(str(error).split())[:300] or type(error).__name__
            print(f"  FAILED: {spec.model}: {reason}", flush=True)
    if failures:
        print(f"{failures} of {len(specs)} models could not be downloaded; check the network and try again.")
        return 1
    print(f"All {len(specs)} models are in the local cache; the hub profile now works offline (HF_HUB_OFFLINE=1).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
