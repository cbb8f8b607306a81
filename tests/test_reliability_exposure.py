"""Exposure: the running app serves no file outside itself and writes no user text to its logs or to disk."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability.endpoints import ENDPOINTS, with_text  # noqa: E402
from reliability.outcomes import call, connect  # noqa: E402
from reliability.server import APP_PATH, REPO_ROOT, AppServer, shared_server  # noqa: E402

PASSWD = Path("/etc/passwd")
# A line that exists in app.py whatever its content: its own module docstring opening.
APP_SOURCE_SNIPPET = APP_PATH.read_text(encoding="utf-8")[:60].encode() if APP_PATH.exists() else b"\x00never"


@pytest.fixture(scope="module")
def server() -> AppServer:
    return shared_server("tiny")


def _cache_file() -> Path:
    """A real file inside the model cache directory (created for the test if the cache is empty)."""
    from service.models.embedded import cache_dir

    directory = cache_dir()
    for candidate in sorted(directory.rglob("*.json")) if directory.exists() else []:
        return candidate
    fallback = Path(tempfile.gettempdir()) / "atlas-fake-cache" / "manifest.json"
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text('{"secret": "model-cache-content"}', encoding="utf-8")
    return fallback


def _forbidden_requests() -> list[tuple[str, bytes]]:
    """(raw request path, bytes that must not come back) for files outside what the app serves."""
    root_line = b"root:"
    app = str(APP_PATH)
    cache = _cache_file()
    cache_bytes = cache.read_bytes()[:40]
    relative_app = os.path.relpath(APP_PATH, "/")
    paths = [
        ("/gradio_api/file=/etc/passwd", root_line),
        ("/file=/etc/passwd", root_line),
        ("/gradio_api/file=//etc/passwd", root_line),
        ("/gradio_api/file=/tmp/../etc/passwd", root_line),
        ("/gradio_api/file=../../../../../../etc/passwd", root_line),
        ("/gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", root_line),
        ("/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", root_line),
        ("/gradio_api/file=%2Fetc%2Fpasswd", root_line),
        ("/gradio_api/file=/proc/self/environ", b"PATH="),
        ("/gradio_api/file=/proc/self/cmdline", b"app.py"),
        (f"/gradio_api/file={app}", APP_SOURCE_SNIPPET),
        (f"/file={app}", APP_SOURCE_SNIPPET),
        (f"/gradio_api/file=../../../../../../{relative_app}", APP_SOURCE_SNIPPET),
        ("/gradio_api/file=app.py", APP_SOURCE_SNIPPET),
        ("/gradio_api/file=./app.py", APP_SOURCE_SNIPPET),
        (f"/gradio_api/file={REPO_ROOT / 'service' / 'limits.py'}", b"MAX_INPUT_CHARS"),
        ("/gradio_api/file=service/limits.py", b"MAX_INPUT_CHARS"),
        (f"/gradio_api/file={cache}", cache_bytes),
        ("/static/../../../../../../etc/passwd", root_line),
        ("/assets/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", root_line),
        ("/gradio_api/static/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", root_line),
    ]
    return paths


def test_files_outside_the_app_are_refused(server: AppServer) -> None:
    leaked = []
    for path, content in _forbidden_requests():
        status, body = server.get(path)
        if status == 200 and content and content in body:
            leaked.append(f"{path} -> {status}, {len(body)} bytes containing {content[:30]!r}")
    assert not leaked, "the app served files from outside itself:\n" + "\n".join(leaked)
    assert server.alive


def _files_containing(marker: bytes, roots: list[Path], since: float) -> list[str]:
    """Files under `roots` modified after `since` whose bytes contain `marker`."""
    found = []
    skip = {".git", ".venv", "node_modules", "__pycache__", ".hypothesis", ".pytest_cache"}
    for root in roots:
        if not root.exists():
            continue
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [name for name in subdirectories if name not in skip]
            for name in files:
                path = Path(directory) / name
                try:
                    if path.stat().st_mtime < since or path.stat().st_size > 50_000_000:
                        continue
                    if marker in path.read_bytes():
                        found.append(str(path))
                except OSError:
                    continue
    return found


def test_user_text_is_never_logged_nor_written_to_disk(server: AppServer) -> None:
    from service.models.embedded import cache_dir

    marker = f"atlas-private-{uuid.uuid4().hex}"
    started = time.time() - 1
    log_before = len(server.log_text())
    client = connect(server.url)
    text = f"My secret diary says {marker} and nothing else."
    for api_name in ENDPOINTS:
        outcome = call(client, api_name, *with_text(api_name, text), timeout=120)
        assert outcome.kind in ("ok", "clear_error"), f"{api_name}: {outcome.kind} {outcome.detail}"
    # An input that fails validation must not be echoed into the log either.
    too_long = marker + "x" * 5000
    outcome = call(client, "/classify", too_long, timeout=60)
    assert outcome.kind == "clear_error", outcome
    time.sleep(0.5)
    new_log = server.log_text()[log_before:]
    assert marker not in new_log, f"user text reached the server log:\n{new_log[-2000:]}"
    roots = [REPO_ROOT, cache_dir(), Path(tempfile.gettempdir()), Path.home() / ".cache" / "huggingface"]
    written = [path for path in _files_containing(marker.encode(), roots, started) if path != str(server.log_path)]
    assert not written, f"user text was written to disk: {written}"
