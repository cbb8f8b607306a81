"""Time the first load of the embedded Gemma in a fresh interpreter (run as a module; prints one JSON line).

`python -m bench.cold_load --device cpu` loads from the converted cache wherever ATTENTION_ATLAS_CACHE points;
point it at an empty directory to time the first-ever load (GGUF → safetensors conversion included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def measure_in_subprocess(device: str, cache_directory: str | None = None, timeout: float = 900.0) -> dict[str, float]:
    """{'import_seconds', 'load_seconds', 'peak_rss'} of loading the embedded Gemma in a new Python process.

    `cache_directory` None uses the user's cache (warm); a path to an empty directory times the conversion too.
    """
    env = dict(os.environ)
    if cache_directory is not None:
        env["ATTENTION_ATLAS_CACHE"] = cache_directory
    completed = subprocess.run(
        [sys.executable, "-m", "bench.cold_load", "--device", device],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"loading the embedded model failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()

    started = time.perf_counter()
    import torch  # noqa: F401 — import cost is reported separately from the load
    import transformers  # noqa: F401

    from service.models.embedded import load_embedded_gemma
    imported = time.perf_counter()
    load_embedded_gemma(device=arguments.device)
    loaded = time.perf_counter()

    from bench.app_process import process_memory
    memory = process_memory(os.getpid())
    print(json.dumps({
        "import_seconds": imported - started,
        "load_seconds": loaded - imported,
        "peak_rss": memory["peak_rss"],
        **load_breakdown(),
    }))


def load_breakdown() -> dict[str, float]:
    """Seconds of each step of a cached load, timed again one by one (the files are in the page cache now)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from service.models.embedded import converted_model_dir, verify_cache

    directory = converted_model_dir()
    steps: dict[str, float] = {}
    started = time.perf_counter()
    verify_cache(directory)
    steps["verify_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="sdpa",
                                         use_safetensors=True, local_files_only=True)
    steps["weights_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    AutoTokenizer.from_pretrained(directory, local_files_only=True)
    steps["auto_tokenizer_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    Tokenizer.from_file(str(directory / "tokenizer.json"))
    steps["raw_tokenizer_seconds"] = time.perf_counter() - started
    return steps


if __name__ == "__main__":
    main()
