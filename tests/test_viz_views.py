"""The layer, head, overview and cross views put the right value in the right cell, escape tokens, stay in budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.result import Segment
from viz_fixtures import decoder_result, encoder_decoder_result, encoder_result, pattern, random_result
from viz import (plot_alignment, plot_attention_heads, plot_attention_overview, plot_cross_attention, plot_head,
                 plot_layer_heads, plot_model_overview)
from viz.labels import display_token, display_tokens, wrap_lines

BUDGET = 250_000
ROOT = Path(__file__).resolve().parents[1]
WORDS = ["<bos>", "The", " cat", " sat", " on", " the", " mat"]
EVIL = ["<img src=x onerror=alert(1)>", "</script>", "a&b", "<b>bold</b>"]


def z_of(fig, trace: int = 0) -> np.ndarray:
    return np.asarray(fig.data[trace].z, dtype=np.float32)


def test_identity_head_puts_ones_on_the_diagonal_and_masks_the_future():
    fig = plot_head(decoder_result(WORDS), layer=0, head=0)
    z = z_of(fig)
    assert z.shape == (7, 7)
    assert np.allclose(np.diag(z), 1.0)
    upper = np.triu(np.ones((7, 7), dtype=bool), 1)
    assert np.isnan(z[upper]).all(), "future keys must be masked (NaN), not zero"
    assert np.allclose(z[np.tril(np.ones((7, 7), dtype=bool), -1)], 0.0)


def test_previous_token_head_lights_the_cell_left_of_the_diagonal():
    z = z_of(plot_head(decoder_result(WORDS), layer=0, head=1))
    for query in range(1, 7):
        assert z[query, query - 1] == pytest.approx(1.0)
        assert z[query, query] == pytest.approx(0.0)


def test_uniform_causal_head_gives_one_over_visible_keys():
    z = z_of(plot_head(decoder_result(WORDS), layer=0, head=2))
    for query in range(7):
        assert np.allclose(z[query, : query + 1], 1.0 / (query + 1))


def test_rows_and_columns_are_labelled_with_their_own_tokens():
    fig = plot_head(decoder_result(WORDS), layer=1, head=0)  # layer 1 head 0 = previous-token
    heatmap = fig.data[0]
    assert heatmap.y[3].startswith("#3 ") and heatmap.y[3].endswith("␣sat")
    assert heatmap.x[2].endswith("␣cat")
    row, col = 3, 2  # " sat" looks at " cat"
    assert z_of(fig)[row, col] == pytest.approx(1.0)
    assert "query %{y}" in heatmap.hovertemplate and "key %{x}" in heatmap.hovertemplate
    assert "%{z" in heatmap.hovertemplate


def test_repeated_tokens_stay_distinct_rows():
    tokens = ["the", "cat", "the", "the"]
    fig = plot_head(decoder_result(tokens), layer=0, head=0)
    assert len(set(fig.data[0].y)) == 4 and len(set(fig.data[0].x)) == 4
    assert list(fig.layout.yaxis.ticktext).count("the") == 3
    assert fig.layout.yaxis.type == "category" and fig.layout.yaxis.autorange == "reversed"


def test_encoder_attention_has_no_masked_cells():
    fig = plot_head(encoder_result(["[CLS]", "good", "film", "[SEP]"]), layer=0, head=2)
    z = z_of(fig)
    assert not np.isnan(z).any()
    assert np.allclose(z, 0.25)
    assert "⟨CLS⟩" in fig.layout.yaxis.ticktext


def test_layer_view_has_one_panel_per_head_in_head_order():
    fig = plot_layer_heads(decoder_result(WORDS), layer=0)
    assert len(fig.data) == 3
    assert np.allclose(np.diag(z_of(fig, 0)), 1.0)          # head 0 identity
    assert z_of(fig, 1)[4, 3] == pytest.approx(1.0)          # head 1 previous
    assert z_of(fig, 2)[6, 0] == pytest.approx(1 / 7)        # head 2 uniform
    assert [a.text for a in fig.layout.annotations[:3]] == ["head 0", "head 1", "head 2"]


def test_mean_over_heads_averages_the_heads():
    result = decoder_result(WORDS, names=[["identity", "previous"]])
    z = z_of(plot_layer_heads(result, layer=0, mean_over_heads=True))
    assert z[3, 3] == pytest.approx(0.5) and z[3, 2] == pytest.approx(0.5)
    assert z[0, 0] == pytest.approx(1.0)


def test_sliding_window_layers_mask_keys_outside_the_window():
    result = decoder_result(WORDS, names=[["uniform"]], layer_types=["sliding:2"])
    z = z_of(plot_head(result, 0, 0))
    assert np.isnan(z[4, 2]) and not np.isnan(z[4, 3]) and not np.isnan(z[4, 4])


def test_long_inputs_are_pooled_and_rows_still_sum_to_one():
    result = random_result("decoder", tokens=300, layers=1, heads=1)
    fig = plot_head(result, 0, 0)
    z = z_of(fig)
    assert z.shape[0] < 300
    assert np.allclose(np.nansum(z, axis=1), 1.0, atol=1e-4)
    assert "–" in fig.data[0].y[-1], "a pooled row names the span of tokens it covers"


def test_overview_places_each_head_in_its_own_tile():
    result = decoder_result(WORDS)  # layer 0: identity, previous, uniform; layer 1: previous, uniform, identity
    fig = plot_model_overview(result)
    z = z_of(fig)
    tile = 7 + 1  # 7 tokens + a gap
    assert z.shape == (2 * tile - 1, 3 * tile - 1)
    assert np.allclose(np.diag(z[0:7, 0:7]), 1.0)                       # layer 0 head 0 identity
    assert z[tile + 5, 4] == pytest.approx(1.0)                          # layer 1 head 0 previous: row 5 → key 4
    assert np.allclose(np.diag(z[tile:tile + 7, 2 * tile:2 * tile + 7]), 1.0)  # layer 1 head 2 identity
    assert list(fig.layout.xaxis.ticktext) == ["head 0", "head 1", "head 2"]
    assert list(fig.layout.yaxis.ticktext) == ["layer 0", "layer 1"]


def test_cross_view_shows_target_rows_and_source_columns():
    source, target = ["▁I", "▁like", "▁tea", "</s>"], ["<pad>", "我", "喜欢", "茶", "。"]
    result = encoder_decoder_result(source, target)
    fig = plot_cross_attention(result, layer=0, head=1)
    z = z_of(fig)
    assert z.shape == (5, 4)
    assert np.allclose(z, pattern("identity", 5, 4, causal=False))
    assert "喜欢" in fig.layout.yaxis.ticktext and "␣like" in fig.layout.xaxis.ticktext
    assert list(fig.data[1].x) == [fig.data[0].x[min(i, 3)] for i in range(5)], "ring on the strongest source"


def test_cross_view_refuses_results_without_cross_attention():
    with pytest.raises(ValueError, match="no cross-attention"):
        plot_cross_attention(decoder_result(WORDS))


def test_colour_scale_tops_at_the_largest_visible_value_for_twelve_heads():
    # Regression: the colour maximum was overwritten by a panel's layout position (cmax ≈ 0.29 for 12 heads).
    heads = np.full((12, 5, 5), 0.2, dtype=np.float32)  # (head, query_pos, key_pos): uniform rows
    heads[7, 2] = [0.9, 0.025, 0.025, 0.025, 0.025]       # the largest visible value, 0.9, in one cell of head 7
    fig = plot_attention_heads(heads, list("abcde"))
    assert len(fig.data) == 12 and {trace.coloraxis for trace in fig.data} == {"coloraxis"}
    assert fig.layout.coloraxis.cmax == pytest.approx(0.9, abs=1e-6)
    one_head = plot_attention_heads(heads[7] * 0.5, list("abcde"))
    assert one_head.layout.coloraxis.cmax == pytest.approx(0.45, abs=1e-6)


def _panel_titles(fig) -> list[str]:
    return [annotation.text for annotation in fig.layout.annotations if annotation.text.startswith("head")]


def test_every_view_works_for_every_architecture_and_side():
    source, target = ["a", "b", "c"], ["x", "y"]
    result = encoder_decoder_result(source, target, layers=2, heads=3)
    for side, tokens in (("encoder", source), ("decoder", target)):
        labels = display_tokens(tokens)
        heads = plot_layer_heads(result, 1, side)
        assert f"{side} self-attention · layer 1" in heads.layout.title.text
        assert len(heads.data) == 3 and _panel_titles(heads) == ["head 0", "head 1", "head 2"]
        assert all(z_of(heads, index).shape == (len(tokens), len(tokens)) for index in range(3))
        assert list(heads.layout.yaxis.ticktext) == labels and list(heads.layout.xaxis.ticktext) == labels

        head = plot_head(result, 0, 2, side)
        assert f"{side} self-attention · layer 0 · head 2" in head.layout.title.text
        assert len(head.data) == 1 and z_of(head).shape == (len(tokens), len(tokens))
        assert list(head.layout.yaxis.ticktext) == labels and list(head.layout.xaxis.ticktext) == labels

        overview = plot_model_overview(result, side)
        tile = len(tokens) + 1  # tokens + a gap
        assert z_of(overview).shape == (2 * tile - 1, 3 * tile - 1)  # 2 layers × 3 heads of tiles
        assert list(overview.layout.yaxis.ticktext) == ["layer 0", "layer 1"]
        assert list(overview.layout.xaxis.ticktext) == ["head 0", "head 1", "head 2"]
        assert side in overview.layout.title.text
    cross = plot_model_overview(result, "cross")
    assert z_of(cross).shape == (2 * (len(target) + 1) - 1, 3 * (len(source) + 1) - 1)
    assert "cross" in cross.layout.title.text
    assert np.isnan(z_of(plot_head(result, 0, 0, "decoder"))[0, 1])
    assert not np.isnan(z_of(plot_head(result, 0, 0, "encoder"))).any()


def test_out_of_range_layer_says_the_valid_range():
    with pytest.raises(ValueError, match=r"layer 5 is out of range: there are 2 layers \(0–1\)"):
        plot_layer_heads(decoder_result(WORDS), layer=5)


def test_array_level_functions_check_token_counts():
    with pytest.raises(ValueError, match="3×3 positions but there are 4 query tokens"):
        plot_attention_heads(np.eye(3), ["a", "b", "c", "d"])
    fig = plot_attention_heads(np.eye(3, dtype=np.float32), ["a", "b", "c"], causal=True)
    assert np.allclose(np.diag(z_of(fig)), 1.0)
    assert plot_alignment(np.full((2, 3), 1 / 3), ["x", "y"], ["a", "b", "c"]).data
    assert plot_attention_overview(np.ones((2, 2, 3, 3)) / 3).data


@pytest.mark.parametrize("architecture,layers,heads", [("decoder", 18, 4), ("encoder", 6, 12),
                                                       ("encoder-decoder", 6, 8), ("decoder", 12, 12)])
def test_every_view_stays_within_budget_at_128_tokens(architecture, layers, heads):
    result = random_result(architecture, tokens=128, layers=layers, heads=heads)
    figures = [plot_layer_heads(result, layers - 1), plot_layer_heads(result, 0, mean_over_heads=True),
               plot_head(result, 0, heads - 1), plot_model_overview(result)]
    if architecture == "encoder-decoder":
        figures += [plot_cross_attention(result), plot_cross_attention(result, 2, 3), plot_model_overview(result, "cross"),
                    plot_layer_heads(result, 0, "encoder")]
    for fig in figures:
        size = len(fig.to_json())
        assert size <= BUDGET, f"{fig.layout.title.text}: {size} bytes"


def test_attention_travels_as_float32_binary():
    fig = plot_head(random_result("decoder", 128, 1, 1), 0, 0)
    data = json.loads(fig.to_json())["data"][0]["z"]
    assert data["dtype"] == "f4" and "bdata" in data


@pytest.mark.parametrize("view", ["head", "layer", "overview", "cross"])
def test_html_in_tokens_is_escaped_everywhere(view):
    tokens = EVIL + ["ok"]
    result = encoder_decoder_result(tokens, tokens) if view == "cross" else decoder_result(tokens)
    fig = {"head": lambda: plot_head(result, 0, 0), "layer": lambda: plot_layer_heads(result, 0),
           "overview": lambda: plot_model_overview(result), "cross": lambda: plot_cross_attention(result)}[view]()
    strings = json.loads(fig.to_json())  # decoded JSON: what plotly.js receives
    text = json.dumps(strings, ensure_ascii=False)
    for raw in ("<img", "</script", "<b>", "a&b"):
        assert raw not in text
    if view != "overview":
        assert any(t.startswith("&lt;img␣src=x␣") for t in fig.layout.yaxis.ticktext)
        assert any("&lt;/script&gt;" in t for t in fig.data[0].y)


def test_tokens_are_displayed_readably():
    assert display_tokens([" the", "\n", "\t", "", "<bos>", "[SEP]", "机器", "\u200b"]) == \
        ["␣the", "⏎", "⇥", "∅", "⟨bos⟩", "⟨SEP⟩", "机器", "⟨U+200B⟩"]
    assert display_token("<s>", special=False) == "⟨s⟩"
    assert display_token("<img>", special=False) == "<img>", "only real special tokens get ⟨⟩"
    assert display_token("<extra_id_0>", special=True) == "⟨extra_id_0⟩"


def test_wrap_lines_packs_words_into_lines_of_the_width():
    assert wrap_lines("attention is not an explanation", 12) == ["attention is", "not an", "explanation"]
    assert wrap_lines("a  b\n c", 80) == ["a b c"]
    assert wrap_lines("supercalifragilistic word", 5) == ["supercalifragilistic", "word"], "long words stay whole"
    assert wrap_lines("   ", 10) == []


def test_head_summary_caption_lines_fit_the_figure():
    from viz import plot_head_summary

    fig = plot_head_summary(decoder_result(WORDS), "first_token")
    caption = next(a.text for a in fig.layout.annotations if "attention is not an explanation" in a.text)
    assert caption.count("<br>") >= 2 and all(len(line) <= 130 for line in caption.split("<br>"))


def test_figures_have_explicit_colours_and_a_labelled_colour_bar():
    for theme in ("light", "dark"):
        fig = plot_head(decoder_result(WORDS), 0, 0, theme=theme)
        assert fig.layout.paper_bgcolor and fig.layout.font.color
        assert fig.layout.coloraxis.colorbar.title.text == "attention weight"
    assert fig.layout.paper_bgcolor != plot_head(decoder_result(WORDS), 0, 0).layout.paper_bgcolor


def _viz_modules() -> list[str]:
    return sorted(f"viz.{path.stem}" for path in (ROOT / "viz").glob("*.py") if path.stem != "__init__") + ["viz"]


@pytest.mark.parametrize("module", _viz_modules())
def test_viz_modules_never_import_transformers_or_torch(module):
    code = (f"import sys, {module}; bad = [m for m in ('transformers', 'torch') if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, f"{module} imported {completed.stdout.strip()} {completed.stderr[-500:]}"


def test_segment_names_never_overlap_even_for_one_token_segments():
    tokens = [f"t{index}" for index in range(120)]
    segments = [Segment("first token", 0, 1), Segment("instruction", 1, 10), Segment("demonstration 1", 10, 60),
                Segment("format", 60, 61), Segment("text", 61, 119), Segment("format", 119, 120)]
    fig = plot_head(decoder_result(tokens, names=[["uniform"]], segments=segments), 0, 0)
    names = [(a.x, a.yshift or 0, a.text) for a in fig.layout.annotations if a.yref == "paper" and a.xref == "x"]
    assert [text for _, _, text in names][:3] == ["first token", "instruction", "demonstration 1"]
    per_char = 120 / 170
    for row in {shift for _, shift, _ in names}:
        placed = sorted((x, text) for x, shift, text in names if shift == row)
        for (x, text), (next_x, _) in zip(placed, placed[1:]):
            assert x + len(text) * per_char <= next_x, f"{text!r} runs into the next name on row {row}"
