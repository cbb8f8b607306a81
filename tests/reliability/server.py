"""Start the real app (`python app.py --profile ... --port ...`) in a subprocess and watch it from the outside."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPO_ROOT / "app.py"
STARTUP_TIMEOUT_SECONDS = 180.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def quiet_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a test server runs in: offline, no analytics, unbuffered output."""
    env = dict(os.environ)
    env.update(
        {
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    env.update(extra or {})
    return env


class AppServer:
    """One `app.py` process on a free port; its stdout+stderr go to a log file the test can read."""

    def __init__(
        self,
        profile: str = "tiny",
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        requires_login: bool = False,
    ) -> None:
        self.profile = profile
        # With --auth-file every API route answers 401 until a login: then a 401 also means "serving".
        self.requires_login = requires_login
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra_args = list(extra_args or [])
        self._env = quiet_environment(env)
        self._cwd = cwd or REPO_ROOT
        self._log = tempfile.NamedTemporaryFile(prefix="atlas-server-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.process: subprocess.Popen[bytes] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> "AppServer":
        command = [sys.executable, str(APP_PATH), "--profile", self.profile, "--port", str(self.port)]
        self.process = subprocess.Popen(
            command + self._extra_args,
            cwd=self._cwd,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"app.py exited with {self.process.returncode} before serving:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/gradio_api/info", timeout=5) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                if error.code == 401 and self.requires_login:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app.py did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- observation -------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_text()[-characters:]

    def resident_bytes(self) -> int:
        """Resident memory of the server process (and any children it started)."""
        import psutil

        process = psutil.Process(self.pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return int(total)

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """HTTP GET `path` verbatim (no normalisation of `..`), returning (status, body)."""
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


_shared: dict[str, AppServer] = {}
_shared_lock = threading.Lock()


def shared_server(profile: str = "tiny") -> AppServer:
    """One server per profile for the whole test session (started on first use, stopped at exit)."""
    with _shared_lock:
        server = _shared.get(profile)
        if server is None or not server.alive:
            server = AppServer(profile).start()
            _shared[profile] = server
            atexit.register(server.stop)
        return server
