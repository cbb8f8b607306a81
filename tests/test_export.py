"""Export: a view as one HTML file that works offline (plotly.js inlined, PNG and SVG sized for slides), the shown
result as JSON (one layer read, also for on-demand attention), kept in memory under one-time tokens bound to the
login and the visitor's kept result, and served by a route behind the app's login."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import plotly.graph_objects as go
import pytest
from access_fixtures import PASSWORD, USER, write_auth_file
from test_app_panel import decoder_result, translation_result

import app
from conftest import free_port
from demos.attention_panel import AttentionPanel, Selection
from demos.export import (EXPORT_ROUTE, NOT_FOUND_TEXT, Export, ExportCache, install_export_route,
                          prepare_export)
from demos.store import ResultStore
from viz.export import (DECIMALS, SLIDE_HEIGHT, SLIDE_WIDTH, dumps, external_references, result_json,
                        standalone_html, standalone_page)

HOSTILE = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"


class TagCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)


def tags_of(page: str) -> list[str]:
    counter = TagCounter()
    counter.feed(page)
    return counter.tags


def heatmap(title: str = "layer 0 · head 1") -> go.Figure:
    return go.Figure(go.Heatmap(z=[[0.5, 0.5], [0.2, 0.8]], x=["a", "b"], y=["a", "b"]),
                     layout={"title": {"text": title}})


# --- the HTML file --------------------------------------------------------------------------------------------
def test_the_html_file_inlines_plotly_and_points_nowhere_outside_itself() -> None:
    page = standalone_html(heatmap(), "attention-atlas-heads")
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert external_references(page) == []
    assert tags_of(page).count("script") == 3            # PlotlyConfig, plotly.js itself, the figure: none with src
    assert "plotly.js v" in page and len(page) > 3_000_000   # the library is in the file, not on a CDN
    assert "MathJax.js" not in page and "cdn.plot.ly/plotly" not in page


def test_the_modebar_saves_png_and_svg_sized_for_slides() -> None:
    page = standalone_html(heatmap(), "slides")
    png = f'"toImageButtonOptions": {{"format": "png", "filename": "slides", "width": {SLIDE_WIDTH}, ' \
          f'"height": {SLIDE_HEIGHT}, "scale": 1}}'
    assert png in page
    assert f'{{"format": "svg", "filename": "slides", "width": {SLIDE_WIDTH}, "height": {SLIDE_HEIGHT}}}' in page
    assert "Plotly.downloadImage" in page and "modeBarButtonsToAdd" in page


def test_model_strings_cannot_break_out_of_the_page() -> None:
    page = standalone_html(heatmap(HOSTILE), HOSTILE, title=HOSTILE)
    assert tags_of(page).count("script") == 3 and "img" not in tags_of(page)
    assert "alert(1)</script>" not in page
    strip = standalone_page("<p>" + "&lt;script&gt;" + "</p>", HOSTILE)
    assert "script" not in tags_of(strip) and "img" not in tags_of(strip)


def test_the_reference_check_finds_what_would_need_the_network() -> None:
    page = ('<script src="https://cdn.plot.ly/plotly.min.js"></script><link href="//fonts.example/x.css">'
            '<img src="/local.png"><a href="#top">top</a><img src="data:image/png;base64,AA==">'
            '<iframe srcdoc="&lt;script src=&quot;https://code.jquery.com/jq.js&quot;&gt;&lt;/script&gt;"></iframe>')
    found = external_references(page)
    assert len(found) == 4 and any("code.jquery.com" in item for item in found)


# --- the JSON file --------------------------------------------------------------------------------------------
def test_the_json_holds_tokens_the_shown_layer_and_the_prediction() -> None:
    result = decoder_result(length=5, layers=3, heads=2)
    result.decoder_attention[1, 0, 2, :3] = [0.123456, 0.5, 0.376544]
    data = result_json(result, "head", Selection("decoder", 1, 0, "entropy", 4))
    assert data["model_name"] == "tiny-<b>gpt</b>" and data["prediction"] == {"text": " day."}
    assert (data["view"], data["layer"], data["head"], data["side"]) == ("head", 1, 0, "decoder")
    assert data["tokens"] == result.decoder_tokens
    attention = np.array(data["attention"])
    assert attention.shape == (2, 5, 5)                  # (head, query_pos, key_pos) of layer 1
    assert data["attention"][0][2][:3] == [0.1235, 0.5, 0.3765]
    assert np.abs(attention - result.decoder_attention[1]).max() <= 0.5 * 10 ** -DECIMALS + 1e-9
    assert json.loads(dumps(data)) == data


def test_the_cross_view_exports_cross_attention_with_both_token_lists() -> None:
    result = translation_result()
    data = result_json(result, "cross", Selection("decoder", 1, 1, "entropy", 0))
    assert data["side"] == "cross" and np.array(data["attention"]).shape == (2, 3, 4)
    assert data["query_tokens"] == result.decoder_tokens and data["key_tokens"] == result.encoder_tokens
    assert "今天很好" in dumps(data)                        # CJK stays readable


def test_long_results_export_one_layer_without_building_the_whole_array(monkeypatch: pytest.MonkeyPatch) -> None:
    from service import ModelService
    from service.attention import on_demand

    result = ModelService("tiny", max_attention_tokens=1024).generate(" ".join(["the cat sat on the mat"] * 50),
                                                                      max_new_tokens=4)
    attention = result.decoder_attention
    assert isinstance(attention, on_demand.OnDemandAttention)
    expected = attention[1]                                 # (head, query_pos, key_pos)

    def whole_array(*args, **kwargs):
        raise AssertionError("the export built the whole attention array")

    monkeypatch.setattr(on_demand.OnDemandAttention, "__array__", whole_array, raising=False)
    data = result_json(result, "heads", Selection("decoder", 1, 0, "entropy", 0))
    assert np.array(data["attention"]).shape == expected.shape
    assert np.abs(np.array(data["attention"]) - expected).max() < 1e-4


# --- tokens: one-time, expiring, bound to the login and the kept result ---------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_unguessable_and_serves_its_file_once() -> None:
    cache = ExportCache()
    tokens = {cache.put(Export("a.json", "application/json", b"{}", None)) for _ in range(50)}
    assert len(tokens) == 50 and all(len(token) == 43 for token in tokens)
    token = tokens.pop()
    assert cache.take(token, None).body == b"{}"
    assert cache.take(token, None) is None
    assert cache.take("not-a-token", None) is None and cache.take("../" + token, None) is None


def test_a_token_expires_after_a_few_minutes() -> None:
    clock = Clock()
    cache = ExportCache(ttl_seconds=300, clock=clock)
    early, late = (cache.put(Export(name, "text/html", b"x", None)) for name in ("early", "late"))
    clock.now = 299.0
    assert cache.take(early, None) is not None
    clock.now = 301.0
    assert cache.take(late, None) is None and len(cache) == 0


def test_another_login_cannot_take_or_burn_a_users_token() -> None:
    cache = ExportCache()
    token = cache.put(Export("a.html", "text/html", b"x", "teacher"))
    assert cache.take(token, "student") is None and cache.take(token, None) is None
    assert cache.take(token, "teacher") is not None


def test_the_cache_stays_within_its_bytes() -> None:
    cache = ExportCache(max_bytes=10)
    first = cache.put(Export("a", "text/plain", b"123456", None))
    second = cache.put(Export("b", "text/plain", b"123456", None))
    assert cache.total_bytes == 6 and cache.take(first, None) is None and cache.take(second, None) is not None


def build_panel(store: ResultStore) -> AttentionPanel:
    with gr.Blocks():
        return AttentionPanel("generation", store, elem_prefix="test")


def visitor(session: str = "session-a", user: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(session_hash=session, username=user)


def test_the_panel_export_builds_both_files_of_what_it_shows() -> None:
    store, cache = ResultStore(), ExportCache()
    panel = build_panel(store)
    result = decoder_result()
    store.put("session-a", "generation", result)
    links = prepare_export(panel, cache, "head", "decoder", 2, 1, None, None, None, None, visitor())
    hrefs = [value for tag, value in _attributes(links, "href")]
    assert len(hrefs) == 2 and all(href.startswith(EXPORT_ROUTE.split("{")[0].lstrip("/")) for href in hrefs)
    page, data = (cache.take(href.rsplit("/", 1)[1], None) for href in hrefs)
    assert page.filename.endswith("-head-layer2-head1.html") and page.media_type.startswith("text/html")
    assert external_references(page.body.decode()) == [] and "layer 2" in page.body.decode()
    parsed = json.loads(data.body)
    assert (parsed["view"], parsed["layer"], parsed["head"]) == ("head", 2, 1)
    assert "<b>" not in links                                       # model names never reach the page raw


def test_html_views_export_as_a_page_and_model_strings_stay_escaped() -> None:
    store, cache = ResultStore(), ExportCache()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result())          # tokens hold "<script>", the model name "<b>"
    links = prepare_export(panel, cache, "strip", "decoder", 0, 0, None, 3, None, None, visitor())
    page = cache.take(_attributes(links, "href")[0][1].rsplit("/", 1)[1], None).body.decode()
    assert "script" not in tags_of(page) and "&lt;script&gt;" in page
    assert "<title>" in page and "tiny-&lt;b&gt;gpt&lt;/b&gt;" in page


def test_links_die_with_the_visitors_result() -> None:
    store, cache = ResultStore(), ExportCache()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result())
    links = prepare_export(panel, cache, "heads", "decoder", 0, 0, None, None, None, None, visitor())
    store.clear_session("session-a")                                # "Forget my results" or a closed tab
    assert all(cache.take(href.rsplit("/", 1)[1], None) is None for _, href in _attributes(links, "href"))
    assert "run the model first" in prepare_export(panel, cache, "heads", None, 0, 0, None, None, None, None,
                                                   visitor())


def _attributes(fragment: str, name: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            found.extend((tag, value) for key, value in attrs if key == name)

    Finder().feed(fragment)
    return found


# --- the route, on the real app ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked_app():
    """The real app (tiny profile) behind a password file, with the export route installed as app.py would."""
    from service import ModelService

    path = write_auth_file(f"{USER}:{PASSWORD}\n")
    port = free_port()
    cache = ExportCache()
    demo = app.configure_queue(app.build_app(ModelService(profile="tiny"), ResultStore()))
    options = app.launch_options(app.parse_args(["--port", str(port), "--auth-file", str(path)]))
    demo.launch(prevent_thread_lock=True, quiet=True, **install_export_route(options, cache))
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(url, 60)
    yield SimpleNamespace(url=url, cache=cache)
    demo.close()
    path.unlink()


def wait_until_answering(url: str, timeout: float) -> None:
    """Until the server answers at all (behind a login, /gradio_api/info answers 401)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/gradio_api/info", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def test_the_route_is_behind_the_login_and_serves_a_token_once(locked_app: SimpleNamespace) -> None:
    token = locked_app.cache.put(Export("view.html", "text/html; charset=utf-8", b"<!doctype html><p>hi", USER))
    address = locked_app.url + EXPORT_ROUTE.format(token=token)
    refused = httpx.get(address, timeout=15)
    assert refused.status_code == 401 and b"<p>hi" not in refused.content
    assert len(locked_app.cache) == 1                                # a refused request does not burn the token
    login = httpx.post(locked_app.url + "/login", data={"username": USER, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200
    served = httpx.get(address, cookies=dict(login.cookies), timeout=15)
    assert served.status_code == 200 and served.content == b"<!doctype html><p>hi"
    assert served.headers["content-disposition"] == 'attachment; filename="view.html"'
    assert served.headers["cache-control"] == "no-store"
    again = httpx.get(address, cookies=dict(login.cookies), timeout=15)
    assert again.status_code == 404 and again.text == NOT_FOUND_TEXT
    unknown = httpx.get(locked_app.url + EXPORT_ROUTE.format(token="x" * 43), cookies=dict(login.cookies), timeout=15)
    assert unknown.status_code == 404 and "Export this view" in unknown.text


def test_install_keeps_other_app_routes() -> None:
    options = install_export_route({"app_kwargs": {"routes": ["existing"], "docs_url": None}}, ExportCache())
    assert options["app_kwargs"]["docs_url"] is None and options["app_kwargs"]["routes"][0] == "existing"
    assert options["app_kwargs"]["routes"][1].path == EXPORT_ROUTE
    again = install_export_route(options, ExportCache())          # app.py installs it; a test may install its own
    assert [getattr(route, "path", route) for route in again["app_kwargs"]["routes"]] == ["existing", EXPORT_ROUTE]
