"""Helpers for the access tests (password, fair turns, forget): the real app served in this process on the tiny
profile, optionally behind a password file, with a model whose runs wait for a gate the test opens."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import free_port, wait_until_serving

USER, PASSWORD = "teacher", "correct-horse-battery-9"
GATE_TIMEOUT_SECONDS = 60.0
GATED_METHODS = ("classify", "answer", "translate")


def write_auth_file(lines: str) -> Path:
    """A password file with `lines`, readable by this user only (deleted by the caller)."""
    handle = tempfile.NamedTemporaryFile("w", prefix="atlas-auth-", suffix=".txt", delete=False, encoding="utf-8")
    with handle:
        handle.write(lines)
    path = Path(handle.name)
    path.chmod(0o600)
    return path


class GatedService:
    """The tiny ModelService, except that classify/answer/translate wait until `gate` is set (or 60 s pass):
    requests then really wait in Gradio's queue while the test submits more."""

    def __init__(self) -> None:
        from service import ModelService

        self.inner = ModelService(profile="tiny")
        self.gate = threading.Event()
        self.started = 0   # runs that reached the model
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in GATED_METHODS:
            return attribute

        def gated(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.started += 1
            self.gate.wait(GATE_TIMEOUT_SECONDS)
            return attribute(*args, **kwargs)

        return gated


class ServedApp:
    """app.build_app + app.configure_queue + app.launch_options from the command line, served in this process."""

    def __init__(self, service: Any, auth_lines: str | None = None) -> None:
        import app
        from demos.store import ResultStore

        self.service = service
        self.store = ResultStore()
        self.auth_file = write_auth_file(auth_lines) if auth_lines is not None else None
        self.demo = app.configure_queue(app.build_app(service, self.store))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = ["--port", str(self.port)] + (["--auth-file", str(self.auth_file)] if self.auth_file else [])
        self.demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_options(app.parse_args(argv)))
        if self.auth_file is None:
            wait_until_serving(self.url, 60)
        else:  # /gradio_api/info needs a login now: the login page says the server is up
            _wait_for_login_page(self.url)

    def client(self, auth: tuple[str, str] | None = None) -> Any:
        from gradio_client import Client

        return Client(self.url, auth=auth, verbose=False)

    def held(self, session: str) -> int:
        """The session's model requests in Gradio's queue now (waiting or running)."""
        from demos.turns import FairTurns

        return FairTurns(self.demo).held(session)

    def sessions_waiting(self) -> list[str]:
        """Sessions with a model request in Gradio's queue now."""
        from demos.turns import FairTurns

        return sorted({event.session_hash for event in FairTurns(self.demo).model_events()})

    def close(self) -> None:
        self.demo.close()
        if self.auth_file is not None:
            self.auth_file.unlink(missing_ok=True)


def _wait_for_login_page(url: str, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not serve its login page within {timeout:.0f} s")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `condition` every 50 ms; fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
