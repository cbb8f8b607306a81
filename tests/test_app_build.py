"""The app as a whole: tabs, public API surface, safe launch defaults, lazy loading and a tab whose model fails."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest
from gradio_client.exceptions import AppError

import app
from conftest import REPO_ROOT, InProcessApp
from demos import qa
from demos.generation import StopRequests, run_generation
from demos.attention_panel import AttentionPanel
from demos.store import ResultStore
from service import ModelService
from service.errors import ModelLoadError

PUBLIC_ENDPOINTS = {"generate", "answer", "translate", "classify"}


class RecordingService:
    """The tiny service, recording every load and task call; `broken` tasks fail to load like a missing model."""

    def __init__(self, profile: str = "tiny", broken: tuple[str, ...] = ()) -> None:
        self._service = ModelService(profile=profile)
        self.broken = broken
        self.calls: list[tuple[str, Any]] = []

    def load(self, task: str, progress: Any = None) -> None:
        self.calls.append(("load", task))
        if task in self.broken:
            raise ModelLoadError("tiny-broken", "its weights are missing", "Use --profile tiny for the other tabs")
        if progress is not None:
            progress(0.5, f"loading the {task} model")
        self._service.load(task, progress)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._service, name)
        if name in ("generate", "stream_generate", "answer", "translate", "classify", "explain"):
            def recorded(*args: Any, **kwargs: Any) -> Any:
                self.calls.append((name, args[:1]))
                return attribute(*args, **kwargs)
            return recorded
        return attribute


@pytest.fixture(scope="module")
def tiny_demo() -> gr.Blocks:
    return app.configure_queue(app.build_app(ModelService(profile="tiny"), ResultStore()))


def test_tabs_are_the_four_tasks_plus_explain_and_the_lesson(tiny_demo: gr.Blocks) -> None:
    tabs = [block.label for block in tiny_demo.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs[:4] == ["Generate", "Ask", "Translate", "Sentiment"]
    assert set(tabs) <= {"Generate", "Ask", "Translate", "Sentiment", "Explain", "Lesson"}


def test_only_task_events_are_public_and_they_share_one_model_slot(tiny_demo: gr.Blocks) -> None:
    from demos import BATCHED_CONCURRENCY_ID, BATCHED_CONCURRENCY_LIMIT

    public = {fn.api_name for fn in tiny_demo.fns.values() if fn.api_visibility != "private"}
    insight = {"segment_attention", "compare_shots", "next_tokens", "logit_lens", "head_roles"}
    assert PUBLIC_ENDPOINTS <= public <= PUBLIC_ENDPOINTS | {"explain", "forget"} | insight
    for fn in tiny_demo.fns.values():
        if fn.api_name in ("classify", "answer"):  # they wait together, to share their model calls (the batcher)
            assert (fn.concurrency_id, fn.concurrency_limit) == (BATCHED_CONCURRENCY_ID, BATCHED_CONCURRENCY_LIMIT)
        elif fn.api_name in PUBLIC_ENDPOINTS:
            assert (fn.concurrency_id, fn.concurrency_limit) == ("model", 1)
        if fn.name in ("redraw", "refresh"):
            assert fn.concurrency_id == "view", "layer/head switches must not wait behind a model run"


def test_queue_is_bounded(tiny_demo: gr.Blocks) -> None:
    assert tiny_demo._queue.max_size == app.QUEUE_MAX_SIZE


def test_launch_defaults_are_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    options = app.launch_options(app.parse_args([]))
    assert options["server_name"] == "127.0.0.1"
    assert options["share"] is False
    assert options["allowed_paths"] is None
    assert "server_port" not in options  # gradio picks the first free port from 7860


def test_gradio_server_environment_is_honoured_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    options = app.launch_options(app.parse_args([]))
    assert (options["server_name"], options["server_port"]) == ("0.0.0.0", 7999)
    options = app.launch_options(app.parse_args(["--host", "127.0.0.1", "--port", "8123"]))
    assert (options["server_name"], options["server_port"]) == ("127.0.0.1", 8123)


def test_profile_defaults_to_embedded_and_to_hub_on_spaces() -> None:
    assert app.default_profile({}) == "embedded"
    assert app.default_profile({"SPACE_ID": "someone/attention-atlas"}) == "hub"
    for profile in ("embedded", "hub", "tiny", "tiny-fewshot"):
        assert app.parse_args(["--profile", profile]).profile == profile
    with pytest.raises(SystemExit):
        app.parse_args(["--profile", "gpt-5"])
    with pytest.raises(SystemExit):
        app.parse_args(["--device", "tpu"])


def test_importing_the_app_loads_no_model_code() -> None:
    code = "import sys, app; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]


def test_page_is_served_before_any_model_loads_then_each_tab_loads_its_own() -> None:
    service = RecordingService(broken=("sentiment",))
    served = InProcessApp(service)
    try:
        with urllib.request.urlopen(served.url + "/", timeout=30) as response:
            assert response.status == 200 and b"Attention Atlas" in response.read()
        assert service.calls == [], "no model may load before a tab is used"
        client = served.client()

        with pytest.raises(AppError, match="Could not load tiny-broken: its weights are missing"):
            client.predict("I loved it", api_name="/classify")
        # The other tabs keep working, each loading its own model on first use.
        prediction, _ = client.predict("The cat sat", 4, 0.0, 0, 1.0, 0, api_name="/generate")
        assert isinstance(prediction["text"], str)
        assert ("load", "generation") in service.calls and ("load", "sentiment") in service.calls
        assert ("classify", ("I loved it",)) not in service.calls
    finally:
        served.close()


def test_fewshot_prompt_is_shown_with_its_segments() -> None:
    service = ModelService(profile="tiny-fewshot")
    store = ResultStore()
    with gr.Blocks():
        panel = AttentionPanel("qa", store, elem_prefix="t")
    session = SimpleNamespace(session_hash="teacher")
    prediction, shown = qa.run_qa(service, store, "北京是中国的首都。", "中国的首都是哪里？", session, lambda *a, **k: None)
    assert "北京是中国的首都。"[prediction["start"]:prediction["end"]] == prediction["answer"]
    updates = panel.refresh("heads", "decoder", 0, 0, "entropy", 0, session)
    prompt_panel, prompt = updates[panel.prompt_panel], updates[panel.prompt]
    result = store.get("teacher", "qa")
    assert result is not None and result.prompt and result.segments
    assert prompt_panel["visible"] is True
    assert "中国的首都是哪里" in prompt  # the user's question is inside the prompt actually sent
    for segment in {segment.name for segment in result.segments}:
        assert segment in prompt


def test_ci_runs_make_test_and_make_test_runs_every_test() -> None:
    ci = REPO_ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111, ".ci/run must be executable"
    assert ci.read_text().startswith("#!/usr/bin/env bash") and "make test" in ci.read_text()
    dry_run = subprocess.run(["make", "-n", "-B", "test"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    pytest_lines = [line for line in dry_run.stdout.splitlines() if "-m pytest" in line]
    assert pytest_lines and all(" -m " not in line.split("-m pytest", 1)[1] for line in pytest_lines)
    assert "HF_HUB_OFFLINE=1" in pytest_lines[0]
    assert "apt-get install -y chromium" in dry_run.stdout


def test_stop_finishes_only_the_pressing_visitors_generation_and_keeps_its_attention() -> None:
    service, store, stops = ModelService(profile="tiny"), ResultStore(), StopRequests()
    visitor = SimpleNamespace(session_hash="visitor")
    other_run = stops.begin("other")  # another visitor's generation, running at the same time
    run = run_generation(service, store, "Once upon a time", 200, 0.0, 0, 1.0, 0, visitor, lambda *a, **k: None,
                         stops)
    first_text = next(run)[1]
    assert stops.stop("nobody") is False        # a Stop with no run of one's own changes nothing
    assert stops.stop("visitor") is True
    last_json, last_text = list(run)[-1]
    assert not other_run.is_set(), "one visitor's Stop ended another visitor's generation"
    result = store.get("visitor", "generation")
    assert result is not None and last_text.startswith(first_text) and last_json["text"] == last_text
    assert any("Stopped on request" in notice for notice in result.notices)
    assert result.self_attention().shape[-1] == len(result.tokens()) < 200
    assert stops.stop("visitor") is False       # the run is over: nothing left to stop


def test_a_stop_pressed_while_the_run_still_waits_for_its_turn_still_stops_it() -> None:
    service, store, stops = ModelService(profile="tiny"), ResultStore(), StopRequests()
    visitor = SimpleNamespace(session_hash="visitor")
    assert stops.stop("visitor") is False       # nothing pressed yet: nothing to stop
    stops.expect("visitor")                     # Generate pressed; the run waits in the queue
    assert stops.stop("visitor") is True
    outputs = list(run_generation(service, store, "Once upon a time", 200, 0.0, 0, 1.0, 0, visitor,
                                  lambda *a, **k: None, stops))
    result = store.get("visitor", "generation")
    assert result is not None and any("Stopped on request after 1 of 200" in notice for notice in result.notices)
    assert outputs[-1][0]["text"] == outputs[-1][1]
    stops.expect("visitor")                     # the next run starts afresh: the old Stop does not carry over
    list(run_generation(service, store, "Once upon a time", 5, 0.0, 0, 1.0, 0, visitor, lambda *a, **k: None,
                        stops))
    again = store.get("visitor", "generation")
    assert again is not None and again is not result
    assert not any("Stopped on request" in notice for notice in again.notices)
    stops.expect("visitor")                     # a run refused before it started: its Stop is forgotten with it
    stops.forget("visitor")
    assert stops.stop("visitor") is False


@pytest.mark.parametrize("module_name, title", [("generation", "Generate"), ("qa", "Ask"), ("translation", "Translate"),
                                                ("sentiment", "Sentiment"), ("explain", "Explain")])
def test_every_tab_also_builds_as_an_app_by_itself(module_name: str, title: str) -> None:
    import importlib

    from demos import alone

    module = importlib.import_module(f"demos.{module_name}")
    demo = alone(module.build_tab, title, ModelService(profile="tiny"))
    assert demo.title == f"Attention Atlas: {title}"
    assert any(getattr(block, "variant", None) == "primary" for block in demo.blocks.values())  # its run button
