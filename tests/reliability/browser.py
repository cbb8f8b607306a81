"""Headless Chromium (Debian's /usr/bin/chromium through playwright) that records dialogs and every request URL."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1"}
# Schemes that never leave the machine: inline data, the page's own blobs, iframe srcdoc documents.
LOCAL_SCHEMES = {"data", "blob", "about"}


def require_chromium() -> str:
    """The chromium path; skip the test only when chromium is missing AND we are not in CI (CI must have it)."""
    path = CHROMIUM_PATH if os.path.exists(CHROMIUM_PATH) else shutil.which("chromium")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: run `make chromium` (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")
    raise AssertionError("unreachable")


@dataclass
class BrowserWatch:
    """What the page did that a test must check: dialogs opened, requests made, console errors."""

    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        """Every requested URL that would leave 127.0.0.1."""
        outside = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.hostname not in LOCAL_HOSTS:
                outside.append(url)
        return outside


def _record_dialog(watch: BrowserWatch, dialog: Any) -> None:
    watch.dialogs.append(f"{dialog.type}: {dialog.message}")
    dialog.dismiss()


def _record_console(watch: BrowserWatch, message: Any) -> None:
    watch.console.append(f"{message.type}: {message.text}")


@contextmanager
def guarded_page(url: str, timeout_ms: int = 30000) -> Iterator[tuple[Any, BrowserWatch]]:
    """Open `url` in a fresh headless Chromium; yield (page, watch). Frames and popups are watched too."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    watch = BrowserWatch()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            # Context-level events cover every page, popup and iframe (srcdoc frames included).
            context.on("request", lambda request: watch.requests.append(request.url))
            context.on("dialog", lambda dialog: _record_dialog(watch, dialog))
            context.on("console", lambda message: _record_console(watch, message))
            context.on("page", lambda new_page: new_page.on("pageerror", lambda error: watch.page_errors.append(str(error))))
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            page.goto(url, wait_until="domcontentloaded")
            yield page, watch
        finally:
            browser.close()
