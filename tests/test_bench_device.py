"""bench.device_attention reports what a long result really keeps and hands its views (here on the CPU and a tiny
Gemma; the GPU run writes docs/performance-gpu.md the same way)."""

import copy

import torch

from bench import device_attention
from tests.explain_models import tiny_gemma

TOKENS = 64


def test_the_measured_sizes_are_the_kept_queries_keys_and_the_arrays_a_view_receives() -> None:
    model, _ = tiny_gemma()                                   # 3 layers, 4 query heads over 2 key heads, d = 8
    with torch.inference_mode():
        row = device_attention.measure_views(model, "cpu", TOKENS)
    assert row["kept_on"] == "cpu" and row["tokens"] == TOKENS
    assert row["kept_bytes"] == 3 * (4 + 2) * TOKENS * 8 * 4          # layers × (query + key heads) × T × d fp32
    assert row["whole_matrices_bytes"] == 3 * 4 * TOKENS * TOKENS * 4
    assert row["layer_view_bytes_copied"] == 4 * TOKENS * TOKENS * 4   # one layer: heads × T × T
    assert row["one_row_bytes_copied"] == 3 * 4 * TOKENS * 4           # one query row of every layer and head
    assert all(row[key] > 0 for key in ("keep_seconds", "first_view_seconds", "layer_switch_seconds"))


def test_the_equality_check_finds_the_kept_attention_equal_and_a_wrong_scale_unequal(monkeypatch) -> None:
    from service.attention import on_demand

    model, _ = tiny_gemma()
    assert device_attention.check_equal(model, "cpu", TOKENS)["max_abs_difference"] < 1e-5
    keep = on_demand.keep_queries_keys

    def wrong_scale(*args, **kwargs):
        kept = keep(*args, **kwargs)
        kept.scales = [scale * 2 for scale in kept.scales]   # scores twice as sharp as the model's
        return kept

    monkeypatch.setattr(on_demand, "keep_queries_keys", wrong_scale)
    assert device_attention.check_equal(model, "cpu", TOKENS)["max_abs_difference"] > 1e-3


def test_the_document_says_how_much_faster_the_keeping_pass_ran_on_the_gpu() -> None:
    model, _ = tiny_gemma()
    with torch.inference_mode():
        cpu = {"device": "CPU", "weights": "random", "checks": [],
               "views": [device_attention.measure_views(model, "cpu", TOKENS)]}
    gpu = copy.deepcopy(cpu)
    gpu["views"][0]["keep_seconds"] = cpu["views"][0]["keep_seconds"] / 4
    document = device_attention.render({"torch": "x", "devices": {"cuda": gpu, "cpu": cpu}})
    assert f"(4× at {TOKENS} tokens)" in document
    assert "| kept queries and keys | 36.9 KB |" in document
