"""Answer focus, segment shares, source alignment and the zero-/few-shot figure (viz/focus.py), on synthetic
results with known segments and on real results of the tiny profiles (few-shot Gemma and the specialists)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.analysis.segments import answer_focus, segment_shares
from service.result import Segment
from viz.arrays import FIGURE_BUDGET_BYTES
from viz.focus import (has_answer_focus, has_segment_shares, has_source_alignment, plot_answer_focus,
                       plot_segment_shares, plot_shot_comparison, plot_source_alignment)
from viz.style import ATTENTION_CAVEAT
from viz_fixtures import decoder_result, encoder_decoder_result, random_result

PROMPT = ["<bos>", "Classify", ":", " great", " film", " positive", "Review", ":", " 这", "部", "<img src=x>",
          "Label", ":", " positive", " !"]
SEGMENTS = [Segment("first token", 0, 1, role="sink"), Segment("instruction", 1, 3, role="scaffold"),
            Segment("demonstration 1", 3, 6, role="scaffold"), Segment("format", 6, 8, role="scaffold"),
            Segment("text", 8, 11, role="input"), Segment("format", 11, 13, role="scaffold"),
            Segment("answer", 13, 15, role="output")]


def fewshot_like(tokens=PROMPT, segments=SEGMENTS, names=None, **extra):
    """A decoder result laid out like a few-shot prompt (2 layers × 3 heads of known patterns)."""
    return decoder_result(list(tokens), names=names, segments=list(segments), prompt="".join(tokens), **extra)


def traces(fig):
    """(summed panel, one-token panel) heatmaps of an answer focus figure."""
    by_axis = {trace.xaxis: trace for trace in fig.data}
    return by_axis.get("x"), by_axis["x2"]


@pytest.fixture(scope="module")
def fewshot_results():
    from service import ModelService

    service = ModelService("tiny-fewshot", max_attention_tokens=1024)
    return {"sentiment": service.classify("I loved this movie."),
            "qa": service.answer("Bob lives in Oslo and works in Bergen.", "Where does Bob live?"),
            "translation": service.translate("我喜欢绿茶。"),
            "generation": service.generate("Once upon a time", max_new_tokens=4, min_new_tokens=4),
            "zero": service.classify("I loved this movie.", zero_shot=True)}


@pytest.fixture(scope="module")
def specialist_results():
    from service import ModelService

    service = ModelService("tiny")
    return {"sentiment": service.classify("I loved this movie."),
            "qa": service.answer("Bob lives in Oslo and works in Bergen.", "Where does Bob live?"),
            "translation": service.translate("I like green tea.")}


# --- answer focus ----------------------------------------------------------------------------------------------
def test_focus_rows_are_the_produced_tokens_and_columns_the_users_tokens_and_each_summed_part():
    fig = plot_answer_focus(fewshot_like(), 1)
    summed, single = traces(fig)
    assert list(fig.layout.yaxis.ticktext) == ["␣positive", "␣!"]
    assert list(summed.x) and [key.split(" (")[0] for key in summed.x] == [
        "first token", "instruction", "demonstration 1", "format"]   # same-name segments make one column
    assert list(fig.layout.xaxis.ticktext) == ["first token", "instruction", "demonstration 1", "format"]
    assert list(fig.layout.xaxis2.ticktext) == ["␣这", "部", "&lt;img␣src=x&gt;", "␣positive", "␣!"]
    assert summed.z.shape == (2, 4) and single.z.shape == (2, 5)
    assert "layer 1 · mean over heads" in fig.layout.title.text


def test_hover_of_a_summed_column_shows_its_text_escaped_and_shortened():
    tokens = PROMPT[:3] + ["<b>bold</b>", " and", " a", " long", " demonstration"] * 20 + PROMPT[6:]
    shift = len(tokens) - len(PROMPT)
    segments = SEGMENTS[:2] + [Segment("demonstration 1", 3, 6 + shift, role="scaffold")] + [
        Segment(s.name, s.start + shift, s.end + shift, role=s.role) for s in SEGMENTS[3:]]
    summed, _ = traces(plot_answer_focus(fewshot_like(tokens, segments, names=[["uniform"]]), 0))
    demonstration = next(key for key in summed.x if key.startswith("demonstration 1"))
    assert "(100 tokens)" in demonstration and "&lt;b&gt;bold&lt;/b&gt; and a long" in demonstration
    assert "<b>" not in demonstration and demonstration.endswith("…") and len(demonstration) < 400


def test_focus_cells_add_up_to_each_rows_attention_and_follow_the_chosen_head():
    result = fewshot_like(names=[["uniform", "previous", "identity"]] * 2)
    for head in (None, 0, 1, 2):
        summed, single = traces(plot_answer_focus(result, 1, head))
        total = np.nansum(summed.z, axis=1) + np.nansum(single.z, axis=1)
        np.testing.assert_allclose(total, 1.0, atol=1e-5)
    expected = answer_focus(result, 1).weights[1]                # (row, column): previous-token head
    summed, single = traces(plot_answer_focus(result, 1, 1))
    np.testing.assert_allclose(np.nan_to_num(np.concatenate([summed.z, single.z], axis=1)).sum(),
                               expected.sum(), atol=1e-6)
    # " !" was chosen at " positive" (a decoder's row predicts the next token); its previous-token head looks at
    # the ":" before " positive", one of the format words summed in the left panel
    assert summed.z[1, 3] == pytest.approx(1.0)


def test_later_answer_tokens_are_masked_not_zero():
    _, single = traces(plot_answer_focus(fewshot_like(), 0))
    assert np.isnan(single.z[0, 3]), "the row that chose the first answer token (the ':' before it) cannot see it"
    assert not np.isnan(single.z[1, 3]), "the row that chose the second answer token sees the first"
    assert np.isnan(single.z[1, 4]), "no row sees the token it is choosing"
    assert "grey = masked" in fig_caption(plot_answer_focus(fewshot_like(), 0))


def fig_caption(fig) -> str:
    return next(a.text for a in fig.layout.annotations if ATTENTION_CAVEAT in a.text)


def test_focus_caption_says_what_rows_and_columns_are_and_that_attention_is_not_explanation():
    caption = fig_caption(plot_answer_focus(fewshot_like(), 0))
    assert "Rows: each token the model produced" in caption and "position just before it" in caption
    assert "first token, instruction, demonstrations, format" in caption
    assert all(len(line) <= 130 for line in caption.split("<br>"))


def test_nothing_in_the_focus_figure_is_unescaped_html():
    text = json.dumps(json.loads(plot_answer_focus(fewshot_like(), 0).to_json()), ensure_ascii=False)
    assert "<img" not in text and "&lt;img" in text


def test_a_200_token_result_stays_under_the_budget_at_full_resolution():
    result = random_result("decoder", 200, 18, 4)
    result.segments = [Segment("first token", 0, 1, role="sink"), Segment("instruction", 1, 20, role="scaffold"),
                       Segment("demonstration 1", 20, 60, role="scaffold"), Segment("format", 60, 62, role="scaffold"),
                       Segment("context", 62, 180, role="input"), Segment("answer", 180, 200, role="output")]
    for head in (None, 3):
        fig = plot_answer_focus(result, 17, head)
        assert len(fig.to_json()) <= FIGURE_BUDGET_BYTES
        summed, single = traces(fig)
        assert single.z.shape == (20, 138) and summed.z.shape == (20, 4)   # nothing pooled
        assert "Long input" not in fig_caption(fig)


def test_a_long_input_is_pooled_into_blocks_and_the_caption_says_so():
    result = random_result("decoder", 1024, 2, 2)
    result.segments = [Segment("first token", 0, 1, role="sink"), Segment("instruction", 1, 4, role="scaffold"),
                       Segment("context", 4, 900, role="input"), Segment("format", 900, 904, role="scaffold"),
                       Segment("answer", 904, 1024, role="output")]
    fig = plot_answer_focus(result, 1)
    summed, single = traces(fig)
    assert len(fig.to_json()) <= FIGURE_BUDGET_BYTES
    assert single.z.shape[1] < 1016 and single.z.shape[0] < 120
    assert "Long input: 120 produced tokens × 1019 columns shown as" in fig_caption(fig).replace("<br>", " ")
    assert any("–" in key for key in single.x), "a pooled block names its span"
    assert np.nansum(summed.z, axis=1) + np.nansum(single.z, axis=1) == pytest.approx(1.0, abs=1e-4)


def test_a_sliding_window_layer_says_why_the_start_of_a_long_input_is_grey():
    from demos.i18n import load_catalogs, translate_figure

    load_catalogs()
    result = random_result("decoder", 1024, 2, 2)
    result.layer_types = ["sliding:512", "full"]
    result.segments = [Segment("first token", 0, 1, role="sink"), Segment("context", 1, 1000, role="input"),
                       Segment("answer", 1000, 1024, role="output")]
    sliding = fig_caption(plot_answer_focus(result, 0)).replace("<br>", " ")
    assert "Layer 0 is a sliding-window layer: each token sees only the last 512 tokens" in sliding
    assert "sliding-window" not in fig_caption(plot_answer_focus(result, 1))
    chinese = " ".join(a.text for a in translate_figure(plot_answer_focus(result, 0), "zh").layout.annotations)
    assert "第 0 层是滑动窗口层" in chinese.replace("<br>", "") and "sliding-window" not in chinese


def test_focus_works_on_every_fewshot_task_and_the_specialists(fewshot_results, specialist_results):
    for name, result in [*fewshot_results.items(), *(("hub " + k, v) for k, v in specialist_results.items())]:
        if not has_answer_focus(result):
            continue
        for head in (None, 0):
            fig = plot_answer_focus(result, result.num_layers - 1, head)
            assert len(fig.to_json()) <= FIGURE_BUDGET_BYTES, name
            inputs = [t for s in result.segments if s.role == "input" and s.side == result.main_side
                      for t in result.tokens()[s.start:s.end]]
            assert len(traces(fig)[1].x) >= len(inputs), name
    assert has_answer_focus(fewshot_results["generation"]), "generated rows against the prompt"
    assert not has_answer_focus(specialist_results["translation"]), "Marian: the source is on the encoder side"
    assert has_answer_focus(specialist_results["sentiment"]) and has_answer_focus(specialist_results["qa"])


def test_an_encoder_says_its_rows_are_read_not_produced(specialist_results):
    caption = fig_caption(plot_answer_focus(specialist_results["sentiment"], 0))
    assert "the answer span, or the classifier token" in caption and "grey" not in caption


def test_out_of_range_layer_and_head_say_the_valid_range():
    with pytest.raises(ValueError, match=r"layer 2 is out of range: there are 2 layers"):
        plot_answer_focus(fewshot_like(), 2)
    with pytest.raises(ValueError, match=r"head 3 is out of range: there are 3 heads"):
        plot_segment_shares(fewshot_like(), 3)


# --- shares by segment -----------------------------------------------------------------------------------------
def test_shares_are_stacked_bars_per_layer_that_sum_to_one(fewshot_results, specialist_results):
    for result in [*fewshot_results.values(), *specialist_results.values()]:
        assert has_segment_shares(result)
        for head in (None, 1):
            fig = plot_segment_shares(result, head)
            assert fig.layout.barmode == "stack"
            totals = np.sum([np.asarray(bar.y, dtype=np.float64) for bar in fig.data], axis=0)
            np.testing.assert_allclose(totals, 1.0, atol=1e-4, err_msg=result.task)
            assert len(totals) == result.num_layers
            assert len({bar.name for bar in fig.data}) == len(fig.data), "same-name segments merged"


def test_shares_caption_says_what_the_numbers_mean_and_that_attention_is_not_explanation():
    fig = plot_segment_shares(fewshot_like())
    caption = next(a.text for a in fig.layout.annotations if ATTENTION_CAVEAT in a.text).replace("<br>", " ")
    assert "Each bar is one layer" in caption and "Each bar sums to 1" in caption
    assert "mean over those tokens and over heads" in caption and '"answer": the produced tokens' in caption
    assert "head 2" in plot_segment_shares(fewshot_like(), 2).layout.title.text
    assert [bar.name for bar in fig.data] == ["first token", "instruction", "demonstration 1", "format", "text",
                                              "answer"]


def test_specialist_shares_name_their_own_segments(specialist_results):
    names = {task: {bar.name for bar in plot_segment_shares(result).data}
             for task, result in specialist_results.items()}
    assert {"question", "context", "answer"} <= names["qa"]
    assert "classifier token" in names["sentiment"] and "translation" in names["translation"]


# --- source alignment ------------------------------------------------------------------------------------------
def test_source_alignment_applies_to_decoder_translation_only(fewshot_results, specialist_results):
    assert has_source_alignment(fewshot_results["translation"])
    assert not has_source_alignment(fewshot_results["qa"])
    assert not has_source_alignment(specialist_results["translation"]), "Marian keeps its real cross-attention"
    assert not has_source_alignment(encoder_decoder_result(["a", "b"], ["x", "y"]))


def test_source_alignment_rows_are_renormalised_over_the_source(fewshot_results):
    result = fewshot_results["translation"]
    full = result.layer_types.index("full")
    fig = plot_source_alignment(result, full)
    z = np.asarray(fig.data[0].z, dtype=np.float64)
    source = next(s for s in result.segments if s.name == "source")
    assert z.shape[1] == source.end - source.start
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-4)
    assert "analogue of cross-attention" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "source token (your text)"
    assert list(fig.layout.xaxis.ticktext)[:2] == [t for t in result.tokens()[source.start:source.start + 2]]


def test_rows_a_sliding_window_keeps_from_the_source_are_grey_and_said_so(fewshot_results):
    result = fewshot_results["translation"]             # tiny Gemma: window 16, the translation runs longer
    fig = plot_source_alignment(result, 0, head=1)
    z = np.asarray(fig.data[0].z, dtype=np.float64)
    blind = np.isnan(z).all(axis=1)
    assert blind.any() and not blind.all()
    assert "sliding window does not reach the source" in fig_caption(fig)
    assert len(fig.data[1].y) == int((~blind).sum()), "no strongest-source ring on an empty row"


# --- zero-shot vs few-shot -------------------------------------------------------------------------------------
def test_shot_comparison_shows_both_runs_side_by_side_with_one_legend(fewshot_results):
    few, zero = fewshot_results["sentiment"], fewshot_results["zero"]
    fig = plot_shot_comparison(few, zero)
    left = [bar for bar in fig.data if bar.xaxis == "x"]
    right = [bar for bar in fig.data if bar.xaxis == "x2"]
    assert {bar.name for bar in left} == {share.name for share in segment_shares(few)}
    assert {bar.name for bar in right} == {share.name for share in segment_shares(zero)}
    assert not any(bar.name.startswith("demonstration") for bar in right)
    shown = [bar.name for bar in fig.data if bar.showlegend is not False]
    assert len(shown) == len(set(shown)), "each segment once in the legend"
    colors = {(bar.name, bar.marker.color) for bar in fig.data}
    assert len(colors) == len({name for name, _ in colors}), "a segment has the same colour in both panels"
    titles = [a.text for a in fig.layout.annotations]
    assert any(t.startswith("few-shot: ") for t in titles) and "zero-shot: no demonstrations" in titles
    assert len(fig.to_json()) <= FIGURE_BUDGET_BYTES


# --- the real embedded Gemma ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_gemma_results_open_on_the_answer_focus_with_the_users_words_legible():
    from types import SimpleNamespace

    import gradio as gr

    from demos.attention_panel import AttentionPanel
    from demos.store import ResultStore
    from service import ModelService

    service = ModelService("embedded")
    runs = {
        "qa": (lambda: service.answer("量子计算是一种利用量子力学原理进行信息处理的计算方式。", "什么是量子计算？"),
               ["量子计算是一种利用量子力学原理", "什么是量子计算？"]),
        "translation": (lambda: service.translate("Today is a beautiful day."), ["Today is a beautiful day."]),
        "sentiment": (lambda: service.classify("这部电影非常感人，我忍不住哭了。"), ["这部电影非常感人，我忍不住哭了。"]),
    }
    store, session = ResultStore(), SimpleNamespace(session_hash="slow")
    for task, (run, words) in runs.items():
        result = run()
        with gr.Blocks():
            panel = AttentionPanel(task, store, elem_prefix="slow")
        store.put("slow", task, result)
        updates = panel.refresh(panel.view.value, "decoder", 6, 0, "entropy", 0, session)
        assert updates[panel.view]["value"] == "focus", task
        figure = updates[panel.plot]["value"]
        assert len(figure.to_json()) <= FIGURE_BUDGET_BYTES, task
        shown = "".join(figure.layout.xaxis2.ticktext).replace("␣", " ")
        for text in words:
            assert text.replace(" ", "") in shown.replace(" ", ""), (task, shown)
        assert {"first token", "instruction", "demonstration 1"} <= set(figure.layout.xaxis.ticktext), task
        for head in (None, *range(result.num_heads)):
            totals = np.sum([share.share_by_layer for share in segment_shares(result, head=head)], axis=0)
            np.testing.assert_allclose(totals, 1.0, atol=1e-4, err_msg=f"{task} head {head}")
        for key in ("shares", "focus_head", *(["align"] if task == "translation" else [])):
            redrawn = panel.redraw(key, "decoder", 17, 3, "entropy", 0, session)
            assert len(redrawn[panel.plot]["value"].to_json()) <= FIGURE_BUDGET_BYTES, (task, key)
