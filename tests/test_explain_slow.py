"""Explain on the real models: the hand-computed rows equal embedded Gemma-3-270M's and MiniLM-L6's own attention."""

from __future__ import annotations

import numpy as np
import pytest

from service.explain import architecture_card, explain_attention

pytestmark = pytest.mark.slow

TEXT = "The teacher explained attention to the class, and the students finally understood why it matters."


@pytest.fixture(scope="module")
def gemma():
    from service.models.embedded import load_embedded_gemma

    return load_embedded_gemma()


@pytest.fixture(scope="module")
def minilm():
    from service.models.minilm import load_minilm

    return load_minilm()


# Gemma-3-270M: layers 0–4 slide (window 512), 5, 11 and 17 are full; 4 query heads share 1 key/value head.
@pytest.mark.parametrize(("layer", "head", "position"), [
    (0, 0, -1), (3, 2, 6), (5, 3, 10), (5, 1, 0), (11, 2, -1), (16, 1, 12), (17, 0, 7),
])
def test_real_gemma_recompute_matches_its_attention(gemma, layer, head, position):
    model, tokenizer = gemma
    result = explain_attention(model, tokenizer, TEXT, layer, head, position, "google/gemma-3-270m")
    expected_type = "full" if layer in (5, 11, 17) else "sliding:512"
    assert result.layer_type == expected_type
    assert result.kv_head == 0 and result.num_key_value_heads == 1
    assert result.passed and result.max_abs_diff < 1e-4, result.max_abs_diff
    assert all(diff < 1e-4 for diff in result.checks.values()), result.checks
    assert result.embedding_scale == pytest.approx(640 ** 0.5, rel=1e-4)
    assert result.tokens[0] == "<bos>" and result.token_ids[0] == tokenizer.bos_token_id
    position_index = result.position
    assert np.all(result.model_row[position_index + 1:] == 0)  # causal


def test_real_gemma_explain_leaves_the_shared_model_on_its_fast_attention(gemma):
    model, tokenizer = gemma
    before = model.config._attn_implementation
    explain_attention(model, tokenizer, TEXT, 2, 1, 3, "google/gemma-3-270m")
    assert model.config._attn_implementation == before


def test_real_gemma_architecture_card(gemma):
    card = architecture_card(gemma[0])
    assert card["architecture"] == "decoder-only" and card["num_layers"] == 18
    assert card["num_heads"] == 4 and card["num_key_value_heads"] == 1 and card["head_dim"] == 256
    assert card["hidden_size"] == 640 and card["ffn_size"] == 2048 and card["vocab_size"] == 262144
    assert card["layer_types"].count("full") == 3 and "sliding window 512 on 15 of 18 layers" in card["attention"]
    assert 260e6 < card["parameters"] < 280e6


@pytest.mark.parametrize(("layer", "head", "position"), [(0, 0, 0), (2, 7, 4), (5, 11, -2)])
def test_real_minilm_recompute_matches_its_attention(minilm, layer, head, position):
    model, tokenizer = minilm
    result = explain_attention(model, tokenizer, TEXT, layer, head, position, "all-MiniLM-L6-v2")
    assert result.family == "bert" and result.layer_type == "bidirectional"
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    assert result.passed and result.max_abs_diff < 1e-4, result.max_abs_diff
    assert all(diff < 1e-4 for diff in result.checks.values()), result.checks
    assert result.model_row[result.position + 1:].sum() > 0  # bidirectional: it looks ahead too


def test_real_minilm_architecture_card(minilm):
    card = architecture_card(minilm[0])
    assert card["architecture"] == "encoder-only" and card["norm_placement"] == "post-norm"
    assert (card["num_layers"], card["num_heads"], card["hidden_size"], card["ffn_size"]) == (6, 12, 384, 1536)
    assert card["vocab_size"] == 30522
