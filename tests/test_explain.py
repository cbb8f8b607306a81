"""Explain recompute on tiny models of every supported family: the hand-computed row equals the model's attention."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from explain_models import SENTENCE, TINY_MODELS, tiny_gemma, tiny_llama  # noqa: E402

from service.explain import recompute as explain_module  # noqa: E402
from service.errors import InvalidInputError, UnsupportedError  # noqa: E402
from service.explain import MAX_EXPLAIN_TOKENS, architecture_card, explain_attention  # noqa: E402


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def family_model(request):
    model, tokenizer = TINY_MODELS[request.param]()
    return request.param, model, tokenizer


def test_recomputed_row_equals_the_models_attention_for_every_layer_head_and_several_positions(family_model):
    family, model, tokenizer = family_model
    num_layers = len(architecture_card(model)["layer_types"])
    num_heads = architecture_card(model)["num_heads"]
    for layer in range(num_layers):
        for head in range(num_heads):
            for position in (0, 2, 7, -1):
                result = explain_attention(model, tokenizer, SENTENCE, layer, head, position, f"tiny-{family}")
                assert result.family == family
                assert result.passed, (layer, head, position, result.max_abs_diff)
                assert result.max_abs_diff < 1e-4
                np.testing.assert_allclose(result.recomputed, result.model_row, atol=1e-5)
                assert abs(float(result.recomputed.sum()) - 1.0) < 1e-5
                # every intermediate stage matches what the model itself computed
                assert all(diff < 1e-4 for diff in result.checks.values()), result.checks


def test_every_step_has_the_shapes_the_walkthrough_shows(family_model):
    family, model, tokenizer = family_model
    result = explain_attention(model, tokenizer, SENTENCE, 0, 1, 3, "tiny")
    tokens, d, hidden = len(result.tokens), result.head_dim, result.hidden_size
    assert len(result.token_ids) == tokens
    for name in ("token_embeddings", "input_embeddings", "layer_input", "attention_input"):
        assert getattr(result, name).shape == (tokens, hidden), name
    for name in ("query_raw", "key_raw", "value", "query", "key"):
        assert getattr(result, name).shape == (tokens, d), name
    assert result.scores_raw.shape == result.mask.shape == result.recomputed.shape == (tokens,)
    assert result.head_output.shape == (d,)
    assert result.heads_concat.shape == (result.num_heads * d,)
    assert result.attention_output.shape == result.block_output.shape == (hidden,)
    assert result.shapes["Q"] == [tokens, d] and result.shapes["W_O"] == [result.num_heads * d, hidden]
    # the head output really is the weighted sum of V
    np.testing.assert_allclose(result.recomputed @ result.value, result.head_output, atol=1e-5)


def test_decoders_are_causal_and_encoders_see_every_token(family_model):
    family, model, tokenizer = family_model
    result = explain_attention(model, tokenizer, SENTENCE, 0, 0, 2, "tiny")
    if family in ("bert", "distilbert"):
        assert result.layer_type == "bidirectional" and result.mask.all()
        assert result.model_row[3:].sum() > 0  # the model itself looks at later tokens
    else:
        assert not result.mask[3:].any() and result.mask[:3].all()
        assert np.all(result.model_row[3:] == 0)


def test_gemma_sliding_window_layer_masks_keys_outside_the_window_and_full_layer_does_not():
    model, tokenizer = tiny_gemma()   # layers: sliding (window 4), full, sliding
    last = -1
    sliding = explain_attention(model, tokenizer, SENTENCE, 0, 2, last, "tiny-gemma")
    full = explain_attention(model, tokenizer, SENTENCE, 1, 2, last, "tiny-gemma")
    assert sliding.layer_type == "sliding:4" and full.layer_type == "full"
    assert sliding.passed and full.passed
    tokens = len(sliding.tokens)
    assert sliding.mask.sum() == 4 and sliding.mask[tokens - 4:].all()
    assert np.all(sliding.model_row[: tokens - 4] == 0)  # the model agrees: nothing outside the window
    assert full.mask.all() and full.model_row[: tokens - 4].sum() > 0
    assert any("sliding window of 4" in note for note in sliding.notes)


def test_gemma_grouped_query_heads_share_their_key_value_head():
    model, tokenizer = tiny_gemma()   # 4 query heads, 2 key/value heads
    first = explain_attention(model, tokenizer, SENTENCE, 1, 2, 5, "tiny-gemma")
    second = explain_attention(model, tokenizer, SENTENCE, 1, 3, 5, "tiny-gemma")
    other = explain_attention(model, tokenizer, SENTENCE, 1, 1, 5, "tiny-gemma")
    assert first.kv_head == second.kv_head == 1 and other.kv_head == 0
    np.testing.assert_array_equal(first.key, second.key)
    np.testing.assert_array_equal(first.value, second.value)
    assert not np.array_equal(first.query, second.query)
    assert first.uses_rope and first.uses_qk_norm
    assert not np.allclose(first.query_normed, first.query)  # RoPE really rotated the queries


def test_gemma_embeddings_are_scaled_by_sqrt_hidden():
    model, tokenizer = tiny_gemma()
    result = explain_attention(model, tokenizer, SENTENCE, 0, 0, 0, "tiny-gemma")
    assert result.embedding_scale == pytest.approx(32 ** 0.5, rel=1e-3)
    np.testing.assert_allclose(result.token_embeddings * result.embedding_scale, result.input_embeddings, rtol=1e-3,
                               atol=1e-5)


def test_a_recompute_that_skips_rope_is_caught_with_a_cross(monkeypatch):
    model, tokenizer = tiny_gemma()
    monkeypatch.setattr(explain_module, "_rotate_half", lambda x: x * 0)  # q·cos only: a wrong rotation
    result = explain_attention(model, tokenizer, SENTENCE, 1, 0, -1, "tiny-gemma")
    assert not result.passed and result.max_abs_diff >= 1e-4
    assert result.to_json()["passed"] is False


def test_unsupported_family_is_refused_with_a_clear_message():
    model, tokenizer = tiny_llama()
    with pytest.raises(UnsupportedError, match=r"Explain supports Gemma-3, BERT/MiniLM, GPT-2 and DistilBERT; "
                                              r"llama is not supported"):
        explain_attention(model, tokenizer, SENTENCE, 0, 0, 0, "tiny-llama")
    with pytest.raises(UnsupportedError, match="llama is not supported"):
        architecture_card(model)


def test_unsupported_marian_is_refused():
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, pad_token_id=0,
                          decoder_start_token_id=0)
    model = MarianMTModel._from_config(config, attn_implementation="eager")
    with pytest.raises(UnsupportedError, match="marian is not supported"):
        explain_attention(model, None, SENTENCE, 0, 0, 0, "tiny-marian")


@pytest.mark.parametrize(
    ("layer", "head", "position", "message"),
    [
        (3, 0, 0, r"layer must be in \[0, 2\], got 3\. The model has 3 layers\."),
        (0, 4, 0, r"head must be in \[0, 3\], got 4\. Each layer has 4 heads\."),
        (0, 0, 14, r"position must be in \[0, 13\], got 14\. The text has 14 tokens"),
        (0, 0, -15, r"position must be in \[0, 13\], got -15\. The text has 14 tokens \(−1 is the last one\)"),
        (0, 0, 1.5, r"position must be a whole number"),
        (0, 0, float("nan"), r"position must be a finite number"),
        (-1, 0, 0, r"layer must be in \[0, 2\], got -1"),
        (0, None, 0, r"head must be a whole number"),
    ],
)
def test_out_of_range_inputs_name_both_numbers(layer, head, position, message):
    model, tokenizer = tiny_gemma()   # SENTENCE → <bos> + 13 words = 14 tokens
    with pytest.raises(InvalidInputError, match=message):
        explain_attention(model, tokenizer, SENTENCE, layer, head, position, "tiny-gemma")


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_refused(text):
    model, tokenizer = tiny_gemma()
    with pytest.raises(InvalidInputError, match="empty"):
        explain_attention(model, tokenizer, text, 0, 0, 0, "tiny-gemma")


def test_long_text_is_cut_to_the_explain_limit_with_a_note():
    model, tokenizer = tiny_gemma()
    result = explain_attention(model, tokenizer, " ".join([SENTENCE] * 10), 1, 0, -1, "tiny-gemma")
    assert len(result.tokens) == MAX_EXPLAIN_TOKENS and result.passed
    assert any("cut to its first 64 tokens" in note for note in result.notes)


def test_the_models_attention_implementation_is_restored_and_the_lock_is_held():
    import threading

    model, tokenizer = tiny_gemma()
    model.set_attn_implementation("sdpa")
    lock = threading.Lock()
    seen: list[bool] = []
    handle = model.model.layers[0].register_forward_pre_hook(lambda *_: seen.append(lock.locked()))
    result = explain_attention(model, tokenizer, SENTENCE, 0, 0, 3, "tiny-gemma", lock=lock)
    handle.remove()
    assert result.passed and seen == [True]
    assert model.config._attn_implementation == "sdpa" and not lock.locked()


def test_to_json_has_the_api_fields(family_model):
    import json

    family, model, tokenizer = family_model
    payload = explain_attention(model, tokenizer, SENTENCE, 0, 1, 4, "tiny").to_json()
    json.dumps(payload)  # JSON-ready, no -inf
    assert {"tokens", "recomputed", "model", "max_abs_diff", "passed", "layer", "head", "position"} <= set(payload)
    assert len(payload["recomputed"]) == len(payload["model"]) == len(payload["tokens"])
    assert payload["architecture_card"]["model_type"] == family


def test_architecture_card_describes_each_family_from_its_config():
    cards = {family: architecture_card(make()[0]) for family, make in TINY_MODELS.items()}
    gemma, gpt2, bert, distil = cards["gemma3_text"], cards["gpt2"], cards["bert"], cards["distilbert"]
    assert gemma["architecture"] == gpt2["architecture"] == "decoder-only"
    assert bert["architecture"] == distil["architecture"] == "encoder-only"  # GPT has no encoder
    assert gemma["num_key_value_heads"] == 2 and gemma["num_heads"] == 4 and gemma["grouped_query"]
    assert gemma["layer_types"] == ["sliding:4", "full", "sliding:4"] and "RoPE" in gemma["positional"]
    assert "RMSNorm" in gemma["norm"] and gemma["norm_placement"].startswith("pre+post")
    assert gpt2["norm_placement"] == "pre-norm" and "learned absolute" in gpt2["positional"]
    assert bert["norm_placement"] == distil["norm_placement"] == "post-norm"
    assert gpt2["ffn_size"] == 128 and bert["ffn_size"] == 64 and distil["ffn_size"] == 64
    for card in cards.values():
        assert card["parameters"] > 0 and card["vocab_size"] == 64 and card["hidden_size"] == 32


def test_bfloat16_models_reproduce_bit_for_bit(family_model):
    """The recompute mirrors the model's op order and softmax dtype, so a bfloat16 model (CUDA) still passes."""
    import copy

    import torch

    family, model, tokenizer = family_model
    half = copy.deepcopy(model).to(torch.bfloat16)
    for layer, head, position in ((0, 0, -1), (1, 3, 4)):
        result = explain_attention(half, tokenizer, SENTENCE, layer, head, position, f"tiny-{family}-bf16")
        assert result.passed and result.max_abs_diff < 1e-4, (layer, head, position, result.max_abs_diff)
