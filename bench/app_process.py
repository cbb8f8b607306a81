"""Start the app (`python app.py --profile X --port P`) in a subprocess, wait for its page, read its memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AppProcess:
    """The running app. `page_up_seconds` is the time from process start until GET / answered 200."""

    def __init__(self, profile: str, device: str, port: int | None = None, extra_env: dict[str, str] | None = None):
        self.profile = profile
        self.device = device
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.page_up_seconds: float | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="atlas-bench-app-", suffix=".log", delete=False)
        self._extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> float:
        """Launch the app and block until its page answers; returns the seconds that took (the cold start)."""
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **self._extra_env}
        command = [sys.executable, "app.py", "--profile", self.profile, "--port", str(self.port),
                   "--device", self.device]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=REPOSITORY, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with code {self.process.returncode} before its page answered:\n"
                                   f"{self.log_tail()}")
            if time.perf_counter() - started > timeout:
                self.stop()
                raise RuntimeError(f"the app's page did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            if _page_answers(self.url):
                self.page_up_seconds = time.perf_counter() - started
                return self.page_up_seconds
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate the app (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def memory(self) -> dict[str, int]:
        """{'rss': current bytes, 'peak_rss': high-water mark bytes} of the app process."""
        if self.process is None:
            raise RuntimeError("the app is not running")
        return process_memory(self.process.pid)

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> "AppProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        Path(self._log.name).unlink(missing_ok=True)


def process_memory(pid: int) -> dict[str, int]:
    """Current and peak resident set size of a process, in bytes.

    Peak comes from VmHWM in /proc/<pid>/status on Linux; elsewhere psutil's current RSS stands in
    (and peak_wset on Windows).
    """
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        fields: dict[str, int] = {}
        for line in status.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(rest.split()[0]) * 1024  # the kernel reports kB
        return {"rss": fields["VmRSS"], "peak_rss": fields["VmHWM"]}
    import psutil

    info = psutil.Process(pid).memory_info()
    return {"rss": int(info.rss), "peak_rss": int(getattr(info, "peak_wset", info.rss))}


def _page_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
