"""Shared fixtures: the app on the tiny profile (in-process), the app on the embedded Gemma (a real `python app.py`
subprocess) and headless Chromium driven by playwright. Heavy imports stay inside the fixtures."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EMBEDDED_STARTUP_SECONDS = 120.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None,
                       log: Path | None = None) -> float:
    """Seconds until `url`/gradio_api/info answers 200; fails with the server's log when it never does."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log else ""
            raise RuntimeError(f"app.py exited with {process.returncode} before serving:\n{tail}")
        try:
            with urllib.request.urlopen(url + "/gradio_api/info", timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


class InProcessApp:
    """The real app (app.build_app + the app's queue and launch options) served from this process."""

    def __init__(self, service: Any) -> None:
        import app
        from demos.store import ResultStore

        self.service = service
        self.store = ResultStore()
        self.demo = app.configure_queue(app.build_app(service, self.store))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = app.launch_options(app.parse_args(["--port", str(self.port)]))
        self.demo.launch(prevent_thread_lock=True, quiet=True, **options)
        wait_until_serving(self.url, 60)

    def client(self) -> Any:
        from gradio_client import Client

        return Client(self.url, verbose=False)

    def close(self) -> None:
        self.demo.close()


@pytest.fixture(scope="session")
def tiny_app() -> Iterator[InProcessApp]:
    """The app on the `tiny` profile (random tiny GPT-2 / DistilBERT / Marian), shared by the API tests."""
    from service import ModelService

    served = InProcessApp(ModelService(profile="tiny"))
    yield served
    served.close()


@pytest.fixture(scope="session")
def tiny_client(tiny_app: InProcessApp) -> Any:
    return tiny_app.client()


class AppProcess:
    """`python app.py --profile P --port N` in a subprocess, its output in a log file."""

    def __init__(self, profile: str, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix=f"atlas-{profile}-", suffix=".log")[1])
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   PYTHONUNBUFFERED="1", **(extra_env or {}))
        env.pop("GRADIO_SERVER_PORT", None)
        env.pop("GRADIO_SERVER_NAME", None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "app.py"), "--profile", profile, "--port", str(self.port)],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.startup_seconds = wait_until_serving(self.url, EMBEDDED_STARTUP_SECONDS, self.process,
                                                      self.log_path)
        except Exception:
            self.stop()
            raise

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


@pytest.fixture(scope="session")
def embedded_app() -> Iterator[AppProcess]:
    """The real app with the embedded Gemma, started the way `make run` starts it (the model loads on first use)."""
    served = AppProcess("embedded")
    yield served
    served.stop()
    served.log_path.unlink(missing_ok=True)


def chromium_or_skip() -> str:
    """Path of Debian's chromium; skipped only when it is absent AND this is not CI (CI must run browser tests)."""
    if os.path.exists(CHROMIUM) or shutil.which("chromium"):
        return CHROMIUM if os.path.exists(CHROMIUM) else str(shutil.which("chromium"))
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing on CI: `make test` installs it (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is not installed (make test installs it with apt-get)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through the Python playwright package (no browser download).

    Module-scoped: sync playwright runs an event loop in this thread, and other modules start their own."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def whole_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results keep whole attention matrices at any length: the tiny tokenizers make few-shot prompts of 300+
    tokens, past the on-demand threshold, and these tests check the capture made while the model runs."""
    from service import limits

    monkeypatch.setattr(limits, "WHOLE_MATRIX_TOKENS", 4096)
