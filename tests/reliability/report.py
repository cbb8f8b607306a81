"""Keep the figures a reliability test measured (served, errors, latency, memory) in a JSON file for the docs."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

FIGURES_ENV = "ATLAS_RELIABILITY_FIGURES"
_lock = threading.Lock()


def figures_path() -> Path:
    """Where figures go: $ATLAS_RELIABILITY_FIGURES, else a file in the temp directory (never the repository)."""
    import tempfile

    return Path(os.environ.get(FIGURES_ENV) or Path(tempfile.gettempdir()) / "atlas-reliability-figures.json")


def record_figures(test: str, figures: dict[str, Any]) -> None:
    """Merge `figures` under `test` (with a timestamp) into the figures file."""
    path = figures_path()
    with _lock:
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = {}
        existing[test] = {**figures, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        path.write_text(json.dumps(existing, indent=2, sort_keys=True), encoding="utf-8")
