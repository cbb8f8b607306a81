"""Attention on demand: a long result keeps queries and keys, and every layer a view asks for equals the model's
own attention (one eager pass), including grouped-query heads, sliding windows and a cut to the last N tokens."""

import numpy as np
import pytest
import torch

from service import ModelService
from service.attention import capture, on_demand
from service.models.loading import set_attention_kernel
from tests.explain_models import tiny_gemma, tiny_gpt2
from viz import plot_head_summary, plot_model_overview, plot_rollout
from viz.head_stats import attention_rollout, head_statistic
from viz.layer_view import plot_layer_heads

TOKENS = 48


@pytest.fixture(autouse=True)
def no_grad():
    with torch.inference_mode():  # as every service call runs
        yield


def _ids(length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(6, 60, (1, length), generator=generator)  # (1, T): word ids of the tiny vocabulary


@pytest.mark.parametrize("family", [tiny_gemma, tiny_gpt2])
@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_every_layer_equals_the_models_own_attention(family, kernel) -> None:
    model, _ = family()
    ids = _ids(TOKENS)
    reference = capture.decoder_attention(model, ids)                      # (layer, head, T, T), eager
    set_attention_kernel(model, kernel)                                    # the pass runs on whatever kernel is on
    kept = on_demand.keep_queries_keys(model, ids)
    assert kept.shape == reference.shape
    assert np.abs(np.asarray(kept) - reference).max() < 1e-5
    for layer in range(kept.shape[0]):
        assert np.abs(kept[layer] - reference[layer]).max() < 1e-5


def test_indexing_follows_numpy() -> None:
    model, _ = tiny_gemma()
    ids = _ids(TOKENS)
    reference = capture.decoder_attention(model, ids)
    kept = on_demand.keep_queries_keys(model, ids)
    rows = [3, 17, 40]
    for key in [(1,), (2, 3), (slice(None), slice(None), rows, slice(None)), (slice(None), 1, 20, slice(None, 21)),
                (slice(None), slice(1, 2), rows), (0, slice(None), 7), (slice(1, None),), (1, 0, rows),
                (1, slice(None), rows), (2, slice(None), rows, slice(0, 9)), (slice(1, 2), slice(None), rows)]:
        assert kept[key].shape == reference[key].shape, key
        assert np.abs(kept[key] - reference[key]).max() < 1e-5, key


def test_a_cut_to_the_last_tokens_keeps_the_models_rows_over_all_keys() -> None:
    model, _ = tiny_gemma()
    ids = _ids(TOKENS)
    reference = capture.decoder_attention(model, ids, keep_last=20)       # rows over all 48 keys, last 20 shown
    kept = on_demand.keep_queries_keys(model, ids, keep_last=20)
    assert kept.shape == reference.shape == (3, 4, 20, 20)
    assert np.abs(np.asarray(kept) - reference).max() < 1e-5
    assert np.asarray(kept)[1].sum(axis=-1).min() < 0.99   # the full layer's rows gave weight to hidden tokens


def test_what_is_kept_grows_linearly_with_the_tokens() -> None:
    model, _ = tiny_gemma()
    short, long = (on_demand.keep_queries_keys(model, _ids(length)).nbytes for length in (32, 128))
    assert long == 4 * short                         # queries and keys: linear (whole matrices would be 16×)
    whole = 3 * 4 * 128 * 128 * 4                    # layers × heads × T² float32
    kept = on_demand.keep_queries_keys(model, _ids(128)).nbytes
    assert kept == 3 * (4 + 2) * 128 * 8 * 4 < whole  # layers × (query + key heads) × T × d float32


def test_a_result_store_counts_the_layers_views_compute_beside_the_queries_and_keys() -> None:
    from demos.store import result_bytes
    from service.result import AttentionResult

    model, _ = tiny_gemma()
    kept = on_demand.keep_queries_keys(model, _ids(128))
    for layer in range(kept.shape[0]):                # a visitor walks every layer; the last ones stay computed
        kept.layer(layer)
    computed = sum(weights.nbytes for weights in kept._layers.values())
    assert computed == on_demand.CACHED_LAYERS * 4 * 128 * 128 * 4
    result = AttentionResult(task="generation", model_name="tiny", architecture="decoder", prediction={},
                             decoder_tokens=["t"] * 128, decoder_attention=kept)
    assert result_bytes(result) == kept.nbytes + computed == kept.held_bytes


def test_whole_model_views_read_one_layer_at_a_time_and_match_the_arrays() -> None:
    model, _ = tiny_gemma()
    ids = _ids(TOKENS)
    reference = capture.decoder_attention(model, ids)
    kept = on_demand.keep_queries_keys(model, ids)
    for statistic in ("entropy", "distance", "first_token", "previous_token"):
        assert np.abs(head_statistic(kept, statistic) - head_statistic(reference, statistic)).max() < 1e-4
    assert np.abs(attention_rollout(kept) - attention_rollout(reference)).max() < 1e-4
    assert head_statistic(kept, "entropy") is not None and ("statistic", "entropy") in kept._reductions


@pytest.fixture()
def long_generation() -> ModelService:
    return ModelService("tiny", max_attention_tokens=1024)


def test_a_long_result_keeps_queries_and_keys_and_every_view_draws(long_generation: ModelService) -> None:
    prompt = " ".join(["the cat sat on the mat"] * 50)                     # 300 words, beyond the whole-matrix cap
    result = long_generation.generate(prompt, max_new_tokens=4)
    attention = result.decoder_attention
    assert isinstance(attention, on_demand.OnDemandAttention)
    assert attention.shape[-1] == len(result.decoder_tokens) > on_demand.WHOLE_MATRIX_TOKENS
    loaded = long_generation.backend.model(long_generation.backend.task_keys("generation")[0])
    with loaded.lock, torch.inference_mode():
        reference = capture.decoder_attention(loaded.model, torch.tensor([result.decoder_token_ids]))
    assert np.abs(attention[1] - reference[1]).max() < 1e-5
    for figure in (plot_layer_heads(result, 0), plot_model_overview(result), plot_head_summary(result),
                   plot_rollout(result, 1)):
        assert len(figure.to_json()) < 400_000
    assert attention.nbytes < reference.nbytes / 4


def test_the_zoom_shows_one_block_at_full_resolution_with_real_positions(long_generation: ModelService) -> None:
    from demos.attention_panel import draw, offered_view
    from demos.zoom import ZOOM_POSITIONS, parse_zoom, zoom_choices

    result = long_generation.generate(" ".join(["the cat sat on the mat"] * 50), max_new_tokens=4)
    total = len(result.decoder_tokens)
    choices = [value for _, value in zoom_choices(result)]
    assert choices[0] == f"{total - ZOOM_POSITIONS}:{total}|{total - ZOOM_POSITIONS}:{total}"  # the default first
    assert all(int(value.split("|")[1].split(":")[0]) < int(value.split(":")[1].split("|")[0]) for value in choices)
    early_keys = next(value for value in choices if value.endswith("|0:" + str(total % ZOOM_POSITIONS or 128)))
    figure = draw(result, "zoom_head", layer=1, head=1, zoom=early_keys)
    (rows, keys) = parse_zoom(early_keys, result)
    heatmap = figure.data[0]
    assert len(heatmap.y) == rows[1] - rows[0] and len(heatmap.x) == keys[1] - keys[0]  # not pooled
    assert heatmap.y[0].startswith(f"#{rows[0]} ")                                     # real positions on hover
    expected = result.decoder_attention[1, 1][rows[0]:rows[1], keys[0]:keys[1]]
    assert np.abs(np.nan_to_num(np.asarray(heatmap.z, dtype=np.float32)) - expected).max() < 1e-5
    # a value the menu does not offer (a stale page, a hand-made request) falls back to the default block
    assert parse_zoom("0:5000|0:5000", result) == parse_zoom(None, result) == parse_zoom("<b>", result)
    assert offered_view(result, "zoom").key == "zoom"


def test_the_zoom_draws_whole_matrices_too() -> None:
    from demos.attention_panel import draw
    from demos.zoom import zoom_choices

    service = ModelService("tiny")
    for repeats in range(4, 40):                                   # a result between the zoom and on-demand sizes
        result = service.generate(" ".join(["the cat sat on the mat"] * repeats), max_new_tokens=2)
        if len(result.decoder_tokens) > 128:
            break
    assert isinstance(result.decoder_attention, np.ndarray) and 128 < len(result.decoder_tokens) <= 256
    for _, value in zoom_choices(result):
        figure = draw(result, "zoom", layer=1, zoom=value)
        assert len(figure.data[0].y) <= 128
