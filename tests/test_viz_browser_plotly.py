"""Headless Chromium with the installed plotly.js: HTML-like tokens show as text on the axes and in hover labels, and
Gradio's own plotly.js redraws one view after another in one div (as gr.Plot does) without a console error."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from viz import STATISTICS, plot_head
from viz_fixtures import decoder_result, random_result

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                       reason="chromium not installed (apt-get install -y chromium); CI always runs this"),
]
LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKENS = ["<bos>", "<img src=x onerror=alert(1)>", "<b>bold</b>", "a&amp;b", "the", "the"]


def test_plotly_shows_html_like_tokens_as_text(tmp_path):
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "figure.html"
    plot_head(decoder_result(TOKENS, names=[["uniform"]]), 0, 0).write_html(
        str(page_file), include_plotlyjs=True, full_html=True, div_id="figure")  # plotly.js inlined: offline
    dialogs, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            page.locator(".ytick text").first.wait_for(timeout=15_000)
            ticks = page.locator(".ytick text").all_text_contents()
            assert ticks[0] == "⟨bos⟩"
            assert ticks[1].startswith("<img␣src=x␣"), ticks
            assert "<b>bold</b>" in ticks and "a&amp;b" in ticks, "markup and entities stay literal text"
            assert ticks.count("the") == 2, "repeated tokens stay two rows"
            assert page.locator("#figure img").count() == 0 and page.locator(".ytick text b").count() == 0
            box = page.locator(".nsewdrag").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.3)  # row 1, key 0
            page.locator(".hoverlayer .hovertext").first.wait_for(timeout=5_000)
            hover = page.locator(".hoverlayer .hovertext").first.text_content()
        finally:
            browser.close()
    assert "query #1 <img␣src=x␣" in hover and "key #0 ⟨bos⟩" in hover and "weight 0.500" in hover, hover
    assert dialogs == []
    assert all(url.startswith("file://") for url in requests), requests


GRADIO_FRONTEND = Path(importlib.util.find_spec("gradio").origin).parent / "templates" / "frontend"


def _serve(folder: Path) -> tuple[Any, str]:
    """A quiet http.server for `folder` on 127.0.0.1 (a thread); returns (server, base URL)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_switching_between_any_two_plot_views_draws_without_a_console_error():
    """What the panel's gr.Plot does on a view switch, with Gradio's own plotly.js: Plotly.react of the new figure
    onto the div that showed the previous one. Regression: the head summary's auto-ranged colour bar came out
    "NaN" tall after a one-head figure (issue 17)."""
    from playwright.sync_api import sync_playwright

    from demos.attention_panel import available_views, draw

    results = [random_result("decoder", tokens=20, layers=6, heads=4),
               random_result("encoder-decoder", tokens=10, layers=2, heads=3)]
    figures = []  # (name, figure JSON) for every plot view of every result, every statistic of the summary
    for result in results:
        for view in available_views(result):
            if view.target != "plot":
                continue
            for statistic in (STATISTICS if view.key == "summary" else [None]):
                figure = draw(result, view.key, None, 1, 1, statistic, 2)
                figures.append((f"{result.architecture}/{view.key}/{statistic}", json.loads(figure.to_json())))
    module = next((GRADIO_FRONTEND / "assets").glob("PlotlyPlot-*.js")).name
    server, base = _serve(GRADIO_FRONTEND)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
            page.goto(base + "/assets/")  # a plain directory listing, on the module's origin
            page.set_content('<div id="plot" style="width:1200px"></div>')
            page.evaluate(f"async () => {{ await import('{base}/assets/{module}'); }}")  # sets window.Plotly
            page.wait_for_function("() => window.Plotly && window.Plotly.react")
            page.evaluate("(figures) => { window.figures = figures; }", [figure for _, figure in figures])
            errors.clear()  # the listing page's missing favicon
            for first, (first_name, _) in enumerate(figures):
                for second, (second_name, _) in enumerate(figures):
                    if first != second and first_name.split("/")[0] == second_name.split("/")[0]:
                        page.evaluate(REACT_LIKE_GRADIO, [first, second])
                        assert errors == [], f"{first_name} → {second_name}: {errors}"
        finally:
            browser.close()
            server.shutdown()


# gr.Plot's update (gradio/js/plot/shared/plot_types/PlotlyPlot.svelte): responsive, autosize, react, resize;
# here for figures[first] and then figures[second] in the same div. Copies: Plotly.react keeps what it is given.
REACT_LIKE_GRADIO = """async ([first, second]) => {
    const div = document.getElementById('plot');
    for (const index of [first, second]) {
        const figure = structuredClone(window.figures[index]);
        figure.layout.autosize = true;
        figure.layout.margin = figure.layout.margin || {};
        figure.layout.margin.autoexpand = true;
        await Plotly.react(div, figure.data, figure.layout, {responsive: true});
        Plotly.Plots.resize(div);
    }
}"""
