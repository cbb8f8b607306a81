"""Export end to end in headless Chromium on the real embedded Gemma: run Sentiment, press Export, download the HTML
and JSON files, and open the HTML file offline: no external src/href, the Plotly figure renders, no console error,
and its PNG and SVG buttons save slide-sized images. The app's own camera button saves a slide-sized PNG too."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from conftest import free_port, wait_until_serving
from viz.export import SLIDE_HEIGHT, SLIDE_WIDTH, external_references

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_MS = 240_000          # the first run loads the model (~10 s from the converted cache; more on a first conversion)
STEP_MS = 30_000
REVIEW = "A warm, funny film: I loved every minute of it."


@pytest.fixture(scope="module")
def export_app() -> Iterator[Any]:
    """The real app on the embedded Gemma, served in this process with the export route installed as app.py does."""
    import app
    from demos.export import install_export_route
    from demos.store import ResultStore
    from service import ModelService

    port = free_port()
    demo = app.configure_queue(app.build_app(ModelService(profile="embedded"), ResultStore()))
    options = install_export_route(app.launch_options(app.parse_args(["--port", str(port)])))
    demo.launch(prevent_thread_lock=True, quiet=True, **options)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, 60)
    yield url
    demo.close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def download(page: Any, selector: str) -> tuple[str, bytes]:
    with page.expect_download(timeout=STEP_MS) as started:
        page.click(selector)
    saved = started.value
    return saved.suggested_filename, Path(saved.path()).read_bytes()


def test_export_downloads_an_html_file_that_renders_offline(browser: Any, export_app: str,
                                                            tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.set_default_timeout(STEP_MS)
    page.goto(export_app, timeout=60_000)
    page.get_by_role("tab", name="Sentiment", exact=True).click()
    page.locator("#sent-text textarea").fill(REVIEW)
    page.click("#sent-run")
    page.wait_for_selector("#sent-plot .main-svg", timeout=RUN_MS)

    # the app's own camera: a PNG sized for slides
    page.hover("#sent-plot .main-svg")
    name, image = download(page, '#sent-plot .modebar-btn[data-title^="Download plot"]')
    assert name.endswith(".png") and png_size(image) == (SLIDE_WIDTH, SLIDE_HEIGHT)

    page.click("#sent-export")
    page.wait_for_selector("#sent-export-links a.atlas-export-html")
    name, page_bytes = download(page, "#sent-export-links a.atlas-export-html")
    assert name.endswith(".html") and "sentiment" in name
    document = page_bytes.decode("utf-8")
    assert external_references(document) == []
    name, data_bytes = download(page, "#sent-export-links a.atlas-export-json")
    data = json.loads(data_bytes)
    assert data["task"] == "sentiment" and data["prediction"]["label"] in ("positive", "negative")
    assert len(data["attention"][0]) == len(data["tokens"]) == len(data["attention"][0][0])
    assert errors == [], errors
    context.close()

    saved = tmp_path / "export.html"
    saved.write_bytes(page_bytes)
    offline = browser.new_context(offline=True, accept_downloads=True, viewport={"width": 1280, "height": 900})
    view = offline.new_page()
    requested: list[str] = []
    view.on("request", lambda request: requested.append(request.url))
    view.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    view.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    view.goto(saved.as_uri())
    view.wait_for_selector(".main-svg", timeout=STEP_MS)
    view.wait_for_selector(".heatmaplayer image, .hm image, .barlayer .point", state="attached", timeout=STEP_MS)
    assert errors == [], errors
    assert {urlparse(url).scheme for url in requested} <= {"file", "data", "blob"}, requested
    name, image = download(view, '.modebar-btn[data-title^="Download plot as a PNG"]')
    assert png_size(image) == (SLIDE_WIDTH, SLIDE_HEIGHT)
    name, image = download(view, '.modebar-btn[data-title^="Download plot as an SVG"]')
    assert name.endswith(".svg") and f'width="{SLIDE_WIDTH}"' in image.decode("utf-8")
    offline.close()
