"""Head statistics, attention rollout and the token strip on attention with known patterns."""

from __future__ import annotations

import numpy as np
import pytest

from viz_fixtures import decoder_result, encoder_decoder_result, encoder_result, pattern, random_result, stacked
from viz import (STATISTICS, attention_entropy, attention_rollout, first_token_share, head_statistic,
                 mean_attention_distance, plot_head_summary, plot_rollout, plot_statistic_map, previous_token_score,
                 render_token_strip, token_strip_html)
from viz.style import ATTENTION_CAVEAT

T = 8


def test_entropy_is_zero_for_one_hot_and_log2_n_for_uniform():
    assert attention_entropy(pattern("identity", T)) == pytest.approx(0.0)
    uniform = pattern("uniform", T, causal=False)
    assert attention_entropy(uniform) == pytest.approx(np.log2(T))
    causal_uniform = pattern("uniform", T)
    assert attention_entropy(causal_uniform) == pytest.approx(np.mean(np.log2(np.arange(1, T + 1))))


def test_mean_distance_is_zero_for_identity_and_one_for_previous_token():
    assert mean_attention_distance(pattern("identity", T)) == pytest.approx(0.0)
    assert mean_attention_distance(pattern("previous", T)) == pytest.approx((T - 1) / T)  # row 0 looks at itself


def test_previous_token_score_and_first_token_share():
    assert previous_token_score(pattern("previous", T)) == pytest.approx(1.0)
    assert previous_token_score(pattern("identity", T)) == pytest.approx(0.0)
    sink = np.zeros((T, T), dtype=np.float32)
    sink[:, 0] = 1.0
    assert first_token_share(sink) == pytest.approx(1.0)
    assert first_token_share(pattern("identity", T)) == pytest.approx(0.0)
    assert first_token_share(pattern("uniform", T)) == pytest.approx(np.mean(1 / np.arange(2, T + 1)))


def test_head_statistic_returns_one_value_per_layer_and_head_in_order():
    attention = stacked([["identity", "previous"], ["uniform", "previous"]], T)  # (layer, head, query, key)
    values = head_statistic(attention, "previous_token")
    assert values.shape == (2, 2) and values.dtype == np.float32
    assert values[0, 1] == pytest.approx(1.0) and values[1, 1] == pytest.approx(1.0)
    assert values[0, 0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="choose one of entropy, distance"):
        head_statistic(attention, "magic")


def test_rollout_of_identity_layers_is_identity_and_rows_sum_to_one():
    attention = stacked([["identity"]] * 3, T)
    rollout = attention_rollout(attention)
    assert rollout.shape == (3, T, T)
    assert np.allclose(rollout[-1], np.eye(T))
    mixed = attention_rollout(random_result("decoder", 12, 4, 3).decoder_attention)
    assert np.allclose(mixed.sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(mixed[-1], 1), 0.0), "causal attention cannot roll out to future tokens"


def test_rollout_of_previous_token_layers_follows_the_chain():
    attention = stacked([["previous"]] * 2, T)
    rollout = attention_rollout(attention, residual_weight=0.0)[-1]  # two hops back, no residual
    assert rollout[5, 3] == pytest.approx(1.0)
    half = attention_rollout(stacked([["previous"]], T), residual_weight=0.5)[0]
    assert half[5, 5] == pytest.approx(0.5) and half[5, 4] == pytest.approx(0.5)


@pytest.mark.parametrize("statistic", list(STATISTICS))
def test_head_summary_plots_the_statistic_with_its_meaning(statistic):
    result = decoder_result(["<bos>", "a", "b", "a", "b"])
    fig = plot_head_summary(result, statistic)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 3)
    assert np.allclose(z, head_statistic(result.decoder_attention, statistic))
    caption = fig.layout.annotations[-1].text.replace("<br>", " ")
    assert STATISTICS[statistic].meaning.split(" ")[0] in caption and ATTENTION_CAVEAT in caption
    assert len(fig.to_json()) < 250_000


def test_rollout_figure_masks_the_future_and_cites_the_method():
    result = decoder_result(["<bos>", "a", "b", "c"], names=[["identity"], ["identity"]])
    fig = plot_rollout(result)
    z = np.asarray(fig.data[0].z)
    assert np.allclose(np.diag(z), 1.0) and np.isnan(z[0, 3])
    assert "Abnar" in fig.layout.annotations[-1].text
    for architecture, layers, heads in [("decoder", 18, 4), ("encoder", 6, 12)]:
        assert len(plot_rollout(random_result(architecture, 128, layers, heads)).to_json()) <= 250_000
    assert plot_rollout(encoder_result(["[CLS]", "x", "[SEP]"]), layer=0).data


def test_token_strip_shades_what_the_chosen_token_attends_to():
    result = decoder_result(["<bos>", "The", " cat", " sat"])  # layer 0 head 1 = previous-token
    strip = token_strip_html(result, layer=0, position=3, head=1)
    assert 'title="#2 ␣cat: 1.000"' in strip and 'title="#0 ⟨bos⟩: 0.000"' in strip
    assert "(chosen token)" in strip and ATTENTION_CAVEAT in strip
    assert strip._repr_html_() == str(strip)


def test_token_strip_marks_future_tokens_masked_not_zero():
    strip = token_strip_html(decoder_result(["<bos>", "a", "b", "c"]), layer=0, position=1, head=0)
    assert strip.count("cannot be seen (masked)") == 2
    received = token_strip_html(decoder_result(["<bos>", "a", "b", "c"]), 0, 1, head=2, direction="to")
    assert 'title="#3 c: 0.250"' in received and 'title="#0 ⟨bos⟩: cannot be seen (masked)"' in received


def test_token_strip_for_cross_attention_shades_source_tokens():
    result = encoder_decoder_result(["▁I", "▁like", "▁tea"], ["我", "喜欢", "茶"])
    strip = token_strip_html(result, layer=0, position=1, side="cross")
    assert 'title="#1 ␣like: 1.000"' in strip and "喜欢" in strip


def test_token_strip_escapes_every_token():
    tokens = ["<img src=x onerror=alert(1)>", "</script>", "\" onmouseover=\"x", "a&b"]
    strip = str(render_token_strip(np.full(4, 0.25), tokens, focus=0))
    assert "<img" not in strip and "</script>" not in strip and "a&b" not in strip
    assert "&lt;img␣src=x␣onerror=alert(1)&gt;" in strip
    assert '&quot;␣onmouseover=&quot;x' in strip
    with pytest.raises(ValueError, match="weights has shape"):
        render_token_strip(np.ones(3), tokens)


def test_head_summary_has_an_explicit_colour_range_even_when_every_value_is_zero():
    # An auto-ranged colour bar drew "NaN" tall when the app's gr.Plot switched to it from a one-head figure.
    for values, statistic, top in ((np.array([[0.5, 2.0]]), "entropy", 2.0), (np.zeros((2, 3)), "distance", 1.0),
                                   (np.array([[0.2, 0.4]]), "first_token", 1.0)):
        fig = plot_statistic_map(values, statistic)
        assert fig.data[0].coloraxis == "coloraxis" and fig.data[0].zmax is None
        assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, pytest.approx(top))


def test_a_long_strip_shows_the_page_of_the_chosen_token_and_names_the_strongest_elsewhere() -> None:
    """A pasted paragraph: 600 tokens page by 256; the page follows the chosen token, nothing strong is hidden."""
    from demos.i18n import load_catalogs, translate_html
    from viz.token_strip import STRIP_PAGE_TOKENS

    tokens = [f"w{index}" for index in range(600)]
    weights = np.full(600, 0.1 / 599)
    weights[3] = 0.9                                   # the sink, far from the chosen token's page
    strip = str(render_token_strip(weights, tokens, focus=400))
    assert STRIP_PAGE_TOKENS == 256
    assert ">w256<" in strip and ">w511<" in strip and ">w255<" not in strip and ">w512<" not in strip
    assert "Tokens #256–#511 of 600" in strip and "Strongest on other pages: #3 “w3” 0.900." in strip
    assert "0.900 (attention weight)" in strip         # shading stays relative to the whole row
    whole = str(render_token_strip(weights, tokens, focus=400, page_tokens=1000))
    assert len(strip) < len(whole) / 2 and "Tokens #" not in whole
    assert ">w0<" in str(render_token_strip(weights, tokens))   # no chosen token: the first page
    load_catalogs()
    chinese = translate_html(strip, "zh")
    assert "那一页）。其他页上最强的：#3 “w3” 0.900。" in chinese and "词元 #256–#511（共 600 个）" in chinese
