"""The shared attention panel: which views a result offers, redraws from the kept result only, escaped HTML."""

from __future__ import annotations

import inspect
import subprocess
import sys
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from conftest import REPO_ROOT
from demos import attention_panel
from demos.attention_panel import (VIEWS, AttentionPanel, Selection, available_views, draw, info_markdown,
                                   prompt_html, time_line)
from demos.store import ResultStore
from service.result import AttentionResult, Segment


def uniform_causal(layers: int, heads: int, length: int) -> np.ndarray:
    """(layer, head, query_pos, key_pos) causal attention, each row uniform over the keys it can see."""
    mask = np.tril(np.ones((length, length), dtype=np.float32))  # (query_pos, key_pos)
    rows = mask / mask.sum(axis=1, keepdims=True)
    return np.broadcast_to(rows, (layers, heads, length, length)).copy()


def decoder_result(length: int = 8, layers: int = 3, heads: int = 2, **extra) -> AttentionResult:
    tokens = ["<bos>", "<script>", "今", "天", " is", " a", " day", "."][:length]
    tokens += [f"t{index}" for index in range(len(tokens), length)]
    return AttentionResult(task="generation", model_name="tiny-<b>gpt</b>", architecture="decoder",
                           prediction={"text": " day."}, decoder_tokens=tokens,
                           decoder_attention=uniform_causal(layers, heads, length), **extra)


def translation_result() -> AttentionResult:
    source, target = ["Today", " is", " fine", "</s>"], ["<pad>", "今天", "很好"]
    encoder = np.full((2, 2, 4, 4), 0.25, dtype=np.float32)  # (layer, head, query_pos, key_pos)
    cross = np.full((2, 2, 3, 4), 0.25, dtype=np.float32)    # (layer, head, decoder_pos, encoder_pos)
    return AttentionResult(task="translation", model_name="tiny-marian", architecture="encoder-decoder",
                           prediction={"translation": "今天很好", "direction": "en-zh"}, encoder_tokens=source,
                           decoder_tokens=target, encoder_attention=encoder, decoder_attention=uniform_causal(2, 2, 3),
                           cross_attention=cross)


def request(session: str = "session-a") -> SimpleNamespace:
    return SimpleNamespace(session_hash=session)


def build_panel(store: ResultStore, task: str = "generation") -> AttentionPanel:
    with gr.Blocks():
        return AttentionPanel(task, store, elem_prefix="test")


def plot_title(update: dict) -> str:
    return update["value"].layout.title.text


def test_cross_attention_is_offered_only_for_encoder_decoder_results() -> None:
    assert "cross" not in {view.key for view in available_views(decoder_result())}
    assert "cross" in {view.key for view in available_views(translation_result())}


def test_every_offered_view_draws_for_decoder_and_encoder_decoder_results() -> None:
    for result in (decoder_result(), translation_result()):
        for view in available_views(result):
            drawn = draw(result, view.key, None, 1, 1, "entropy", 2)
            if view.target == "html":
                assert isinstance(drawn, str) and drawn
            else:
                assert drawn.to_plotly_json()["data"], view.key


def test_bertviz_is_not_offered_for_long_inputs() -> None:
    assert "bertviz" in {view.key for view in available_views(decoder_result(length=8))}
    assert "bertviz" not in {view.key for view in available_views(decoder_result(length=300, layers=1, heads=4))}


def test_unknown_view_is_refused_with_the_choices() -> None:
    with pytest.raises(Exception, match="choose one of"):
        draw(decoder_result(), "cross", None, 0, 0, None, 0)


def test_layer_switch_redraws_from_the_kept_result_without_the_model() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result())
    updates = panel.refresh("heads", "decoder", 0, 0, "entropy", 0, request())
    assert "layer 0" in plot_title(updates[panel.plot])
    for layer in (1, 2):
        redrawn = panel.redraw("heads", "decoder", layer, 0, "entropy", 0, request())
        assert f"layer {layer}" in plot_title(redrawn[panel.plot])
    one_head = panel.redraw("head", "decoder", 2, 1, "entropy", 0, request())
    assert "head 1" in plot_title(one_head[panel.plot]) and one_head[panel.head]["visible"] is True


def test_results_are_kept_per_session() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result(layers=3))
    expired = panel.redraw("heads", "decoder", 1, 0, "entropy", 0, request("session-b"))
    assert "expired" in expired[panel.info] and panel.plot not in expired  # the other session's drawing stays
    redrawn = panel.redraw("heads", "decoder", 1, 0, "entropy", 0, request("session-a"))
    assert "layer 1" in plot_title(redrawn[panel.plot])


def test_a_new_run_hides_the_previous_attention_until_its_own_result_is_kept() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result())
    store.put("session-b", "generation", decoder_result())
    begun = panel.begin_run(request("session-a"))
    assert "Running" in begun[panel.info]
    assert begun[panel.plot]["visible"] is False and begun[panel.html]["visible"] is False
    assert store.get("session-a", "generation") is None      # a slider moved now cannot redraw the old run
    assert store.get("session-b", "generation") is not None  # other visitors keep theirs
    # The run failed before a result was kept: the panel says why it is empty.
    assert "did not complete" in panel.after_failure(request("session-a"))[panel.info]
    assert "did not complete" in panel.redraw("heads", "decoder", 1, 0, "entropy", 0,
                                              request("session-a"))[panel.info]
    # A result is there after all: its drawing stays.
    store.put("session-a", "generation", decoder_result())
    assert panel.after_failure(request("session-a")) == {}


def test_out_of_range_layer_from_a_stale_page_is_clamped() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result(layers=3))
    redrawn = panel.redraw("heads", "decoder", 17, 0, "entropy", 0, request())
    assert "layer 2" in plot_title(redrawn[panel.plot])
    assert redrawn[panel.layer]["value"] == 2, "the stale slider is put back in range"
    assert "value" not in panel.redraw("heads", "decoder", 1, 0, "entropy", 0, request())[panel.layer], \
        "a valid pick is left alone, so a slider being dragged never jumps back"


def test_refresh_sets_control_ranges_and_shows_the_side_only_for_encoder_decoder() -> None:
    store = ResultStore()
    panel = build_panel(store, "translation")
    store.put("session-a", "translation", translation_result())
    updates = panel.refresh("heads", "decoder", 5, 5, "entropy", 0, request())
    view, side, layer, head = updates[panel.view], updates[panel.side], updates[panel.layer], updates[panel.head]
    assert ("Cross-attention (target × source)", "cross") in view["choices"]
    assert side["visible"] is True and side["choices"] == ["encoder", "decoder"]
    assert layer["maximum"] == 1 and layer["value"] == 1 and head["value"] == 1


def test_token_strip_view_shows_the_query_selector() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result())
    redrawn = panel.redraw("strip", "decoder", 0, 0, "entropy", 3, request())
    query, plot, html_update = redrawn[panel.query], redrawn[panel.plot], redrawn[panel.html]
    assert query["visible"] is True and query["value"] == 3
    assert plot["visible"] is False and html_update["visible"] is True
    assert "&lt;script&gt;" in html_update["value"] and "<script>" not in html_update["value"]


def test_prompt_panel_colours_segments_and_escapes_tokens() -> None:
    result = decoder_result(prompt="<script>alert(1)</script> 今天", segments=[
        Segment("demonstrations", 0, 4), Segment("input <i>", 4, 8)])
    shown = prompt_html(result)
    assert "demonstrations" in shown and "input &lt;i&gt;" in shown
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert shown.count("background:") >= 8 + 2  # every token and both legend entries are coloured
    assert prompt_html(decoder_result()) == ""  # no prompt recorded: nothing to show


def test_refresh_opens_the_prompt_panel_only_when_a_prompt_was_recorded() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result(prompt="Review: good\nSentiment:"))
    assert panel.refresh("heads", "decoder", 0, 0, "entropy", 0, request())[panel.prompt_panel]["visible"] is True
    store.put("session-a", "generation", decoder_result())
    assert panel.refresh("heads", "decoder", 0, 0, "entropy", 0, request())[panel.prompt_panel]["visible"] is False


def test_notices_and_model_name_are_shown_escaped() -> None:
    shown = info_markdown(decoder_result(notices=["Input truncated to <256> tokens"], timings={"model": 0.5}))
    assert "Input truncated to &lt;256&gt; tokens" in shown
    assert "tiny-&lt;b&gt;gpt&lt;/b&gt;" in shown and "0.50 s" in shown


def _view_modules() -> set[str]:
    """The modules of the viz functions each view's `draw` calls, read from the table itself."""
    modules = set()
    for view in VIEWS:
        called = inspect.getclosurevars(view.draw).globals.values()
        found = {function.__module__ for function in called if getattr(function, "__module__", "").startswith("viz.")}
        assert found, f"view {view.key!r} draws with no viz function"
        modules |= found
    return modules


def test_views_import_no_model_code() -> None:
    # One fresh interpreter importing the panel and every viz module its views draw with: if together they pull in
    # neither torch nor transformers, none of them does alone.
    modules = ["demos.attention_panel", *sorted(_view_modules())]
    code = (f"import sys; import {', '.join(modules)}; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "[]", f"{modules} imported model code"


def test_each_view_is_described_once_with_the_controls_it_reads() -> None:
    assert len({view.key for view in VIEWS}) == len(VIEWS)
    assert {view.target for view in VIEWS} <= {"plot", "html"}
    store = ResultStore()
    panel = build_panel(store, "translation")
    store.put("session-a", "translation", translation_result())
    for view in available_views(translation_result()):
        redrawn = panel.redraw(view.key, "encoder", 1, 1, "entropy", 2, request())
        shown = {name for name, component in panel.control_of.items() if redrawn[component]["visible"]}
        assert shown == set(view.controls), view.key


def test_a_view_draws_from_the_checked_selection() -> None:
    result = translation_result()
    heads = attention_panel.VIEWS_BY_KEY["head"]
    figure = heads.draw(result, Selection(side="encoder", layer=1, head=0, statistic="entropy", query=0))
    assert "encoder self-attention · layer 1 · head 0" in figure.layout.title.text
    picked = attention_panel.selection_for(result, heads, side="sideways", layer=9.0, head=-3, statistic="?")
    assert picked == Selection(side="decoder", layer=1, head=0, statistic="entropy", query=2)


def test_time_line_says_the_same_for_every_task_and_nothing_it_does_not_know() -> None:
    assert time_line({"model": 1.234, "capture": 0.049}) == "Time: model 1.23 s · attention capture 0.05 s"
    assert time_line({"model": 0.5}) == "Time: model 0.50 s"
    assert time_line({"capture": 0.0}) == "Time: attention capture 0.00 s"
    assert time_line({}) == "" and time_line({"model": float("nan"), "capture": "soon"}) == ""
    assert "Time:" not in info_markdown(decoder_result())


@pytest.fixture(scope="module")
def tiny_results() -> list[AttentionResult]:
    """Real results of the four tasks on the tiny profile (GPT-2, DistilBERT QA/SST-2, Marian)."""
    from service import ModelService

    service = ModelService(profile="tiny")
    return [
        service.generate("The cat sat on the", max_new_tokens=4),
        service.answer("Marie Curie won two Nobel prizes.", "How many prizes?"),
        service.translate("Today is a beautiful day.", "en-zh"),
        service.classify("这部电影非常感人，我忍不住哭了。"),
    ]


def test_every_view_draws_on_real_results_of_all_four_tasks(tiny_results: list[AttentionResult]) -> None:
    store = ResultStore()
    panel = build_panel(store)
    offered_by_task = {}
    for result in tiny_results:
        store.put("session-a", "generation", result)
        updates = panel.refresh("heads", "decoder", 0, 0, "entropy", 0, request())
        assert "layer 0" in plot_title(updates[panel.plot])
        offered_by_task[result.task] = [key for _, key in updates[panel.view]["choices"]]
        for view_key in offered_by_task[result.task]:
            redrawn = panel.redraw(view_key, None, 1, 1, "distance", 1, request())
            target = panel.drawn[attention_panel.VIEWS_BY_KEY[view_key].target]
            assert redrawn[target]["value"] is not None and redrawn[target]["visible"] is True, (result.task, view_key)
            assert [component for component in panel.drawn.values() if redrawn[component]["visible"]] == [target]
    assert [task for task, keys in offered_by_task.items() if "cross" in keys] == ["translation"]
    assert all({"heads", "head", "mean", "overview", "summary", "strip"} <= set(keys)
               for keys in offered_by_task.values())


# --- the answer focus, shares by segment, source alignment and the zero-/few-shot control (issue 11) ----------
FOCUS_VIEWS = {"focus": {"layer"}, "focus_head": {"layer", "head"}, "shares": set(), "shares_head": {"head"},
               "align": {"layer"}}


@pytest.fixture(scope="module")
def fewshot_service():
    from service import ModelService

    return ModelService(profile="tiny-fewshot")


@pytest.fixture(scope="module")
def fewshot_results(fewshot_service) -> dict[str, AttentionResult]:
    return {"qa": fewshot_service.answer("Bob lives in Oslo.", "Where does Bob live?"),
            "translation": fewshot_service.translate("我喜欢绿茶。"),
            "sentiment": fewshot_service.classify("这部电影非常感人。")}


def test_fewshot_results_open_on_the_answer_focus(fewshot_results) -> None:
    for task, result in fewshot_results.items():
        store = ResultStore()
        panel = build_panel(store, task)
        assert panel.view.value == "focus"
        store.put("session-a", task, result)
        updates = panel.refresh(panel.view.value, "decoder", 0, 0, "entropy", 0, request())
        assert updates[panel.view]["value"] == "focus", task
        assert updates[panel.plot]["elem_classes"] == ["atlas-view-focus"]
        assert "answer focus · layer 0 · mean over heads" in plot_title(updates[panel.plot])
        assert updates[panel.layer]["visible"] is True and updates[panel.head]["visible"] is False
        offered = {key for _, key in updates[panel.view]["choices"]}
        assert {"focus", "focus_head", "shares", "shares_head"} <= offered
        assert ("align" in offered) == (task == "translation")


def test_results_the_focus_does_not_suit_open_on_every_head_and_a_users_pick_is_kept(fewshot_results) -> None:
    store = ResultStore()
    panel = build_panel(store, "translation")
    store.put("session-a", "translation", translation_result())   # Marian: its source is on the encoder side
    updates = panel.refresh("focus", "decoder", 0, 0, "entropy", 0, request())
    assert updates[panel.view]["value"] == "heads"
    store.put("session-a", "translation", fewshot_results["translation"])
    assert panel.refresh("shares", "decoder", 0, 0, "entropy", 0, request())[panel.view]["value"] == "shares"


def test_the_new_views_show_only_their_controls_and_redraw_from_the_kept_result(fewshot_results) -> None:
    store = ResultStore()
    panel = build_panel(store, "translation")
    store.put("session-a", "translation", fewshot_results["translation"])
    for key, controls in FOCUS_VIEWS.items():
        redrawn = panel.redraw(key, "decoder", 1, 1, "entropy", 0, request())
        shown = {name for name, component in panel.control_of.items() if redrawn[component]["visible"]}
        assert shown == controls, key
        figure = redrawn[panel.plot]["value"]
        assert redrawn[panel.plot]["elem_classes"] == [f"atlas-view-{key}"]
        assert ("head 1" in figure.layout.title.text) == (key in ("focus_head", "shares_head")), key
        assert len(figure.to_json()) <= 250_000


def test_a_focus_update_stays_under_250_kb_at_200_tokens() -> None:
    from viz_fixtures import random_result

    result = random_result("decoder", 200, 18, 4)
    result.segments = [Segment("first token", 0, 1, role="sink"), Segment("demonstration 1", 1, 80, role="scaffold"),
                       Segment("text", 80, 170, role="input"), Segment("answer", 170, 200, role="output")]
    store = ResultStore()
    panel = build_panel(store, "sentiment")
    store.put("session-a", "sentiment", result)
    for key in ("focus", "focus_head", "shares"):
        redrawn = panel.redraw(key, "decoder", 17, 3, "entropy", 0, request())
        assert len(redrawn[panel.plot]["value"].to_json()) <= 250_000, key


def build_comparison(service, store, task="sentiment"):
    from demos.shots import ShotComparison

    with gr.Blocks():
        event = gr.Button().click(lambda: None)
        names = ("context", "question") if task == "qa" else ("text",)
        return ShotComparison(service, store, task, {name: gr.Textbox() for name in names}, event, "test")


def test_zero_shot_comparison_is_offered_after_a_fewshot_result_and_shows_both_answers(fewshot_service) -> None:
    store = ResultStore()
    shots = build_comparison(fewshot_service, store)
    assert shots.after_run(request())[shots.group]["visible"] is False      # nothing kept yet
    store.put("session-a", "sentiment", fewshot_service.classify("I loved <b>this</b> movie."))
    offered = shots.after_run(request())
    assert offered[shots.group]["visible"] is True and offered[shots.answers]["visible"] is False
    shown = shots.compare(["I loved <b>this</b> movie."], request(), lambda *args, **kwargs: None)
    answers = shown[shots.answers]["value"]
    assert "Few-shot: 4 demonstrations" in answers and "Zero-shot: no demonstrations" in answers
    assert answers.count("positive") + answers.count("negative") >= 2 and "Score" in answers
    figure = shown[shots.plot]["value"]
    assert {bar.xaxis for bar in figure.data} == {"x", "x2"} and len(figure.to_json()) <= 250_000


def test_zero_shot_comparison_escapes_the_answers(fewshot_results) -> None:
    from dataclasses import replace

    from demos.shots import comparison_html

    few = fewshot_results["qa"]
    zero = replace(few, prediction={"answer": "<img src=x onerror=alert(1)>", "score": 0.5})
    shown = comparison_html("qa", few, zero)
    assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert "The answers differ" in shown


def test_zero_shot_comparison_refuses_changed_text_and_missing_results(fewshot_service) -> None:
    store = ResultStore()
    shots = build_comparison(fewshot_service, store, "qa")
    with pytest.raises(gr.Error, match="Run the task first"):
        shots.compare(["Bob lives in Oslo.", "Where?"], request(), lambda *args, **kwargs: None)
    store.put("session-a", "qa", fewshot_service.answer("Bob lives in Oslo.", "Where does Bob live?"))
    with pytest.raises(gr.Error, match="changed since the last run"):
        shots.compare(["Bob lives in Bergen.", "Where does Bob live?"], request(), lambda *args, **kwargs: None)
    shown = shots.compare(["Bob lives in Oslo.", "Where does Bob live?"], request(), lambda *args, **kwargs: None)
    assert "Few-shot: 4 demonstrations" in shown[shots.answers]["value"]  # 3 fixed, 1 chosen for this input


def test_zero_shot_comparison_stays_hidden_for_models_that_read_no_demonstrations(tiny_results) -> None:
    from demos.shots import NOT_FEWSHOT
    from service import ModelService

    store = ResultStore()
    shots = build_comparison(ModelService(profile="tiny"), store)
    store.put("session-a", "sentiment", tiny_results[3])
    assert shots.after_run(request())[shots.group]["visible"] is False
    with pytest.raises(gr.Error, match=NOT_FEWSHOT[:40]):
        shots.compare(["这部电影非常感人，我忍不住哭了。"], request(), lambda *args, **kwargs: None)


def test_the_compare_button_runs_in_the_model_queue_and_is_not_a_public_endpoint(fewshot_service) -> None:
    from demos import qa

    with gr.Blocks() as demo:
        qa.build_tab(fewshot_service, ResultStore())
    compare = [fn for fn in demo.fns.values() if fn.name == "compare_zero_shot"]
    assert len(compare) == 1
    assert (compare[0].concurrency_id, compare[0].api_visibility) == ("model", "private")
