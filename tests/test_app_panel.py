"""The shared attention panel: which views a result offers, redraws from the kept result only, escaped HTML."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from demos import attention_panel
from demos.attention_panel import AttentionPanel, available_views, draw, info_markdown, prompt_html
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
    assert "layer 0" in plot_title(updates[9])
    for layer in (1, 2):
        redrawn = panel.redraw("heads", "decoder", layer, 0, "entropy", 0, request())
        assert f"layer {layer}" in plot_title(redrawn[5])
    one_head = panel.redraw("head", "decoder", 2, 1, "entropy", 0, request())
    assert "head 1" in plot_title(one_head[5]) and one_head[2]["visible"] is True


def test_results_are_kept_per_session() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result(layers=3))
    expired = panel.redraw("heads", "decoder", 1, 0, "entropy", 0, request("session-b"))
    assert "expired" in expired[-1]
    assert "layer 1" in plot_title(panel.redraw("heads", "decoder", 1, 0, "entropy", 0, request("session-a"))[5])


def test_a_new_run_hides_the_previous_attention_until_its_own_result_is_kept() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result())
    store.put("session-b", "generation", decoder_result())
    info, plot, html = panel.begin_run(request("session-a"))
    assert "Running" in info and plot["visible"] is False and html["visible"] is False
    assert store.get("session-a", "generation") is None      # a slider moved now cannot redraw the old run
    assert store.get("session-b", "generation") is not None  # other visitors keep theirs
    # The run failed before a result was kept: the panel says why it is empty.
    assert "did not complete" in panel.after_failure(request("session-a"))
    assert "did not complete" in panel.redraw("heads", "decoder", 1, 0, "entropy", 0, request("session-a"))[-1]
    # A result is there after all: its drawing stays.
    store.put("session-a", "generation", decoder_result())
    assert panel.after_failure(request("session-a")) == gr.update()


def test_out_of_range_layer_from_a_stale_page_is_clamped() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result(layers=3))
    assert "layer 2" in plot_title(panel.redraw("heads", "decoder", 17, 0, "entropy", 0, request())[5])


def test_refresh_sets_control_ranges_and_shows_the_side_only_for_encoder_decoder() -> None:
    store = ResultStore()
    panel = build_panel(store, "translation")
    store.put("session-a", "translation", translation_result())
    updates = panel.refresh("heads", "decoder", 5, 5, "entropy", 0, request())
    view, side, layer, head = updates[3], updates[4], updates[5], updates[6]
    assert ("Cross-attention (target × source)", "cross") in view["choices"]
    assert side["visible"] is True and side["choices"] == ["encoder", "decoder"]
    assert layer["maximum"] == 1 and layer["value"] == 1 and head["value"] == 1


def test_token_strip_view_shows_the_query_selector() -> None:
    store = ResultStore()
    panel = build_panel(store)
    store.put("session-a", "generation", decoder_result())
    redrawn = panel.redraw("strip", "decoder", 0, 0, "entropy", 3, request())
    query, plot, html_update = redrawn[4], redrawn[5], redrawn[6]
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
    assert panel.refresh("heads", "decoder", 0, 0, "entropy", 0, request())[1]["visible"] is True
    store.put("session-a", "generation", decoder_result())
    assert panel.refresh("heads", "decoder", 0, 0, "entropy", 0, request())[1]["visible"] is False


def test_notices_and_model_name_are_shown_escaped() -> None:
    shown = info_markdown(decoder_result(notices=["Input truncated to <256> tokens"], timings={"model": 0.5}))
    assert "Input truncated to &lt;256&gt; tokens" in shown
    assert "tiny-&lt;b&gt;gpt&lt;/b&gt;" in shown and "0.50 s" in shown


def test_views_import_no_model_code() -> None:
    assert not any(name.startswith(("torch", "transformers")) for name in vars(attention_panel))


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
        assert "layer 0" in plot_title(updates[9])
        offered_by_task[result.task] = [key for _, key in updates[3]["choices"]]
        for view_key in offered_by_task[result.task]:
            redrawn = panel.redraw(view_key, None, 1, 1, "distance", 1, request())
            shown = redrawn[5] if redrawn[5].get("visible") else redrawn[6]
            assert shown["value"] is not None and shown["visible"] is True, (result.task, view_key)
    assert [task for task, keys in offered_by_task.items() if "cross" in keys] == ["translation"]
    assert all({"heads", "head", "mean", "overview", "summary", "strip"} <= set(keys)
               for keys in offered_by_task.values())
