"""Generation steps, the logit lens and head roles on the page: each view draws from what was recorded, is offered
only where it applies, and says what its numbers are."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from conftest import REPO_ROOT
from demos.attention_panel import VIEWS_BY_KEY, AttentionPanel, available_views, draw
from demos.generation import StepView
from demos.probes import PROBES, ModelProbes, default_span, lens_spans, parse_span
from demos.store import ResultStore
from service import ModelService
from service.probes.head_roles import HeadRole
from viz.lens import check_line, plot_logit_lens
from viz.roles import ROLE_COLORS, plot_head_roles
from viz.steps import (has_steps, plot_step_attention_by_layer, plot_step_candidates, step_position,
                       step_strip_html)


@pytest.fixture(scope="module")
def tiny() -> ModelService:
    return ModelService("tiny")


@pytest.fixture(scope="module")
def greedy(tiny: ModelService):
    return tiny.generate("The quick brown fox", max_new_tokens=6, min_new_tokens=6, candidates=5)


@pytest.fixture(scope="module")
def sampled(tiny: ModelService):
    return tiny.generate("The quick brown fox", max_new_tokens=6, min_new_tokens=6, temperature=0.7, top_k=4,
                         seed=3, candidates=8)


def request(session: str = "s") -> SimpleNamespace:
    return SimpleNamespace(session_hash=session)


# --- the step view ---------------------------------------------------------------------------------------
def test_candidate_bars_are_the_recorded_numbers_with_the_chosen_token_marked(greedy) -> None:
    for index, step in enumerate(greedy.generation_steps):
        figure = plot_step_candidates(greedy, index)
        bars = figure.data[0]
        assert list(bars.x) == [candidate["p"] for candidate in step["candidates"]]
        chosen = [color for color in bars.marker.color if color == "#f97316"]
        assert len(chosen) == 1 and bars.marker.color[step["rank"]] == "#f97316"
        assert "rank 0 = the model's first choice" in figure.layout.title.text
        assert len(figure.data) == 1                                     # greedy: no sampling panel


def test_a_sampled_step_shows_the_distribution_it_was_drawn_from_beside_the_raw_one(sampled) -> None:
    step = sampled.generation_steps[2]
    figure = plot_step_candidates(sampled, 2)
    raw, after = figure.data
    assert list(after.x)[: len(step["sampling_candidates"])] == [c["p"] for c in step["sampling_candidates"]]
    assert list(raw.x)[: len(step["candidates"])] == [c["p"] for c in step["candidates"]]
    assert f"rank {step['rank']}" in figure.layout.title.text


def test_a_token_from_outside_the_top_k_gets_its_own_bar_with_its_rank(greedy) -> None:
    step = dict(greedy.generation_steps[0], token="zzz", rank=41, p=0.0001)
    result = SimpleNamespace(**{**vars(greedy), "generation_steps": [step] + greedy.generation_steps[1:]})
    bars = plot_step_candidates(result, 0).data[0]
    assert bars.x[-1] == pytest.approx(0.0001) and bars.y[-1].startswith("41.") and bars.marker.color[-1] == "#f97316"


def test_the_strip_and_layer_rows_show_the_row_of_the_position_that_predicted_the_token(greedy) -> None:
    position = step_position(greedy, 3)
    assert greedy.decoder_token_ids[position] == greedy.generation_steps[3]["token_id"]
    figure = plot_step_attention_by_layer(greedy, 3, head=1, layer=1)
    z = np.asarray(figure.data[0].z)                                         # (layer, key_pos)
    np.testing.assert_allclose(z, greedy.decoder_attention[:, 1, position - 1, :position], atol=1e-6)
    strip = str(step_strip_html(greedy, 3, layer=1, head=None))
    assert f"(#{position - 1}, the last token it had)" in strip and "cannot be seen" in strip


def test_steps_apply_only_to_generation_results_that_recorded_them(tiny, greedy) -> None:
    assert has_steps(greedy)
    assert not has_steps(tiny.generate("Once upon", max_new_tokens=2, candidates=0))
    assert not has_steps(tiny.classify("A fine film."))


def test_the_step_slider_spans_the_steps_and_redraws_from_the_kept_result(greedy) -> None:
    store = ResultStore()
    with gr.Blocks():
        steps = StepView(store)
    store.put("s", "generation", greedy)
    shown = steps.refresh(request())
    assert shown[steps.group]["visible"] is True and shown[steps.step]["maximum"] == 6
    moved = steps.redraw(4, 1, 0, request())
    assert "Step 4 of 6" in moved[steps.candidates].layout.title.text
    assert steps.redraw(99, "nan", None, request())[steps.candidates].layout.title.text.startswith("Step 6 of 6")
    assert steps.refresh(request("other"))[steps.group]["visible"] is False


# --- the logit lens -----------------------------------------------------------------------------------------
def test_the_lens_is_offered_only_for_the_generation_models_results_a_panel_adopted(tiny, greedy) -> None:
    probes = ModelProbes()
    assert not probes.can_probe(greedy)
    assert probes.adopt(greedy, tiny) and probes.can_probe(greedy)
    assert not probes.adopt(tiny.classify("A fine film."), tiny)             # DistilBERT: not the generation model
    other = ModelService("tiny-fewshot")
    assert not probes.adopt(other.classify("A fine film."), tiny)            # another model's decoder result


def test_the_lens_view_draws_a_layer_by_position_grid_with_a_check_mark(tiny, greedy) -> None:
    PROBES.adopt(greedy, tiny)
    assert {"lens", "roles"} <= {view.key for view in available_views(greedy)}
    start, end = default_span(greedy)                                        # the generated tokens
    assert (start, end) == (len(greedy.decoder_tokens) - 7, len(greedy.decoder_tokens))
    figure = draw(greedy, "lens", span=f"{start}:{end}")
    heatmap = figure.data[0]
    layers = tiny.backend.model("generation").model.config.num_hidden_layers
    assert np.asarray(heatmap.z).shape == (layers, end - start)
    assert "✓" in figure.layout.annotations[0].text and "max difference" in figure.layout.annotations[0].text
    assert PROBES.has_lens(greedy, start, end)                               # kept: the next draw is a redraw
    assert len(json.dumps(figure.to_plotly_json(), default=str)) < 250_000


def test_lens_ranges_hold_at_most_64_positions_and_a_stale_value_falls_back(greedy) -> None:
    for label, value in lens_spans(greedy):
        start, end = (int(part) for part in value.split(":"))
        assert 0 <= start < end <= len(greedy.decoder_tokens) and end - start <= 64, label
    assert parse_span("0:9999", greedy) == default_span(greedy)


def test_the_check_line_says_what_it_compares() -> None:
    assert check_line(0.0) == "Last layer vs the model's own output: max difference 0.0 ✓"
    assert check_line(3e-8).endswith("3.0e-08 ✓") and "✗" in check_line(2e-3)


def test_a_lens_update_of_64_positions_stays_under_250_kb() -> None:
    cell = [{"token": "<a long token>", "p": 0.123456}, {"token": "今天", "p": 0.1}, {"token": " b", "p": 0.01}]
    lens = SimpleNamespace(tokens=[f"tok{i}" for i in range(64)], start=100, max_diff_vs_model=1e-7,
                           layers=[[cell] * 64 for _ in range(18)])
    figure = plot_logit_lens(lens)
    assert figure.data[0].text[0][0].startswith("&lt;a") and "token&gt;" in figure.data[0].hovertext[0][0]
    assert len(figure.to_json()) < 250_000


# --- head roles ---------------------------------------------------------------------------------------------
def test_the_role_map_has_a_cell_per_head_coloured_by_role() -> None:
    roles = [HeadRole(layer, head, role, {"previous_token": 0.1, "first_token": 0.2, "local": 0.3,
                                           "induction": 0.4, "broad": 0.5})
             for layer, head, role in [(0, 0, "induction"), (0, 1, "previous-token"), (1, 0, "mixed"),
                                       (1, 1, "first-token sink"), (2, 0, "local"), (2, 1, "broad")]]
    figure = plot_head_roles(roles, selected=(1, 0))
    heatmap = figure.data[0]
    assert np.asarray(heatmap.z).shape == (3, 2)
    assert list(heatmap.text[0]) == ["induction", "previous"] and "induction: 0.40" in heatmap.hovertext[0][0]
    assert figure.layout.shapes[0].x0 == -0.5 and figure.layout.shapes[0].y0 == 0.5      # the selected head
    assert "random sequence of 24 tokens, repeated twice" in figure.layout.annotations[0].text
    assert all(ROLE_COLORS[role.role] in figure.layout.annotations[0].text for role in roles)


def test_roles_view_and_head_summary_name_every_heads_role(tiny, greedy) -> None:
    PROBES.adopt(greedy, tiny)
    roles = tiny.head_roles()
    figure = draw(greedy, "roles", layer=1, head=0)
    assert np.asarray(figure.data[0].z).shape == (greedy.num_layers, greedy.num_heads)
    summary = draw(greedy, "summary", statistic="entropy")
    assert np.asarray(summary.data[0].text).shape == (greedy.num_layers, greedy.num_heads)
    assert "role" in summary.data[0].hovertemplate and len(roles) == greedy.num_layers * greedy.num_heads


def test_the_roles_button_opens_the_chosen_heads_heatmap(tiny, greedy) -> None:
    store = ResultStore()
    with gr.Blocks():
        panel = AttentionPanel("generation", store, elem_prefix="t", service=tiny)
    store.put("s", "generation", greedy)
    panel.refresh("roles", "decoder", 1, 1, "entropy", 0, request())
    assert panel.redraw("roles", "decoder", 1, 1, "entropy", 0, request())[panel.open_view]["visible"] is True
    opened = panel.open_linked_view("roles", "decoder", 1, 1, "entropy", 0, request())
    assert opened[panel.view]["value"] == "head"
    assert "layer 1 · head 1" in opened[panel.plot]["value"].layout.title.text
    assert VIEWS_BY_KEY["roles"].opens == "head"


def test_the_lens_event_says_it_is_computing_before_it_draws(tiny, greedy) -> None:
    store = ResultStore()
    with gr.Blocks():
        panel = AttentionPanel("generation", store, elem_prefix="t", service=tiny)
    result = tiny.generate("A new prompt", max_new_tokens=3, min_new_tokens=3)
    store.put("s", "generation", result)
    first, *rest = list(panel.refresh_events("lens", "decoder", 0, 0, "entropy", 0, request()))
    assert "Computing the logit lens" in first[panel.info] and rest[-1][panel.plot]["visible"] is True
    again = list(panel.redraw_events("lens", "decoder", 0, 0, "entropy", 0, request(), None))
    assert len(again) == 1                                                   # kept: no second model run, no notice


def test_new_views_import_no_model_code() -> None:
    code = ("import sys, viz.steps, viz.lens, viz.roles; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
