"""Model-family adapters: each reaches the right modules with the right shapes, reproduces the model's logits from
its last layer, reports its layer types and key/value heads, and an unknown or unsupported variant is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from explain_models import SENTENCE, VOCAB, tiny_gemma, tiny_gpt2, tiny_llama, tiny_tokenizer  # noqa: E402

from service.errors import UnsupportedError  # noqa: E402
from service.families import ADAPTERS, adapter_for, supported_families  # noqa: E402


def tiny_bert_mlm():
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(4)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    return BertForMaskedLM._from_config(config, attn_implementation="eager").eval(), tiny_tokenizer(cls_sep=True)


def tiny_distilbert_mlm():
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    torch.manual_seed(5)
    config = DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                              max_position_embeddings=128)
    return DistilBertForMaskedLM._from_config(config, attn_implementation="eager").eval(), tiny_tokenizer(cls_sep=True)


def tiny_marian():
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(6)
    config = MarianConfig(vocab_size=VOCAB, d_model=16, encoder_layers=2, decoder_layers=3, encoder_attention_heads=2,
                          decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=32, pad_token_id=0,
                          decoder_start_token_id=0, max_position_embeddings=64, scale_embedding=True)
    return MarianMTModel._from_config(config, attn_implementation="eager").eval(), tiny_tokenizer()


# model_type → (a tiny model with an LM head, its expected sizes and layer types)
FAMILIES = {
    "gemma3_text": (tiny_gemma, {"layers": 3, "heads": 4, "kv_heads": 2, "head_dim": 8, "hidden": 32,
                                 "types": ["sliding:4", "full", "sliding:4"], "qk_norm": True, "input_norm": True}),
    "gpt2": (tiny_gpt2, {"layers": 2, "heads": 4, "kv_heads": 4, "head_dim": 8, "hidden": 32,
                         "types": ["full", "full"], "qk_norm": False, "input_norm": True}),
    "bert": (tiny_bert_mlm, {"layers": 2, "heads": 4, "kv_heads": 4, "head_dim": 8, "hidden": 32,
                             "types": ["bidirectional"] * 2, "qk_norm": False, "input_norm": False}),
    "distilbert": (tiny_distilbert_mlm, {"layers": 2, "heads": 4, "kv_heads": 4, "head_dim": 8, "hidden": 32,
                                         "types": ["bidirectional"] * 2, "qk_norm": False, "input_norm": False}),
    "marian": (tiny_marian, {"layers": 3, "heads": 4, "kv_heads": 4, "head_dim": 4, "hidden": 16,
                             "types": ["full"] * 3, "qk_norm": False, "input_norm": False}),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    make, expected = FAMILIES[request.param]
    model, tokenizer = make()
    return request.param, model, tokenizer, expected


def _ids(tokenizer) -> torch.Tensor:
    return tokenizer(SENTENCE, return_tensors="pt")["input_ids"]  # (1, T)


def _run(model, ids: torch.Tensor) -> dict:
    """One forward pass: encoder-decoder models get the same ids as the target."""
    if adapter_for(model).facts.architecture == "encoder-decoder":
        return {"input_ids": ids, "decoder_input_ids": ids}
    return {"input_ids": ids}


def _input_of(module: torch.nn.Module, model, **inputs) -> torch.Tensor:
    """The hidden state (1, T, D) entering `module` during one forward pass of `model` on `inputs`."""
    seen: dict[str, torch.Tensor] = {}

    def keep(_module, args, kwargs) -> None:
        seen.setdefault("hidden", args[0] if args else kwargs["hidden_states"])

    handle = module.register_forward_pre_hook(keep, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        handle.remove()
    return seen["hidden"]


def _last_layer_and_logits(adapter, model, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the last layer's output (1, T, D), the model's own logits (1, T, V)) from one forward pass."""
    seen: dict[str, torch.Tensor] = {}
    last = adapter.layers(model)[-1]
    handle = last.register_forward_hook(
        lambda _module, _args, output: seen.__setitem__("hidden", output[0] if isinstance(output, tuple) else output))
    try:
        with torch.no_grad():
            logits = model(**_run(model, ids)).logits
    finally:
        handle.remove()
    return seen["hidden"], logits


def test_every_family_has_an_adapter_under_its_model_type():
    assert supported_families() == ("gemma3_text", "bert", "gpt2", "distilbert", "marian")
    for model_type, adapter in ADAPTERS.items():
        assert adapter.model_type == adapter.facts.model_type == model_type


def test_sizes_and_layer_types_match_the_config(family):
    model_type, model, _, expected = family
    adapter = adapter_for(model)
    config = model.config
    assert adapter.model_type == model_type
    assert len(adapter.layers(model)) == expected["layers"]
    assert adapter.num_heads(config) == expected["heads"]
    assert adapter.key_value_heads(config) == expected["kv_heads"]
    assert adapter.head_dim(config) == expected["head_dim"] and adapter.hidden_size(config) == expected["hidden"]
    assert adapter.layer_types(config, expected["layers"]) == expected["types"]


def test_gemma_key_value_heads_and_layer_types_come_from_config_fields():
    model, _ = tiny_gemma()
    adapter = adapter_for(model)
    assert adapter.key_value_heads(model.config) == model.config.num_key_value_heads == 2
    windows = [layer.self_attn.sliding_window for layer in adapter.layers(model)]
    assert adapter.layer_types(model.config, 3) == [f"sliding:{w}" if w else "full" for w in windows]


def test_accessors_reach_the_models_modules_with_the_right_shapes(family):
    model_type, model, tokenizer, expected = family
    adapter = adapter_for(model)
    hidden, heads, kv_heads, d = expected["hidden"], expected["heads"], expected["kv_heads"], expected["head_dim"]
    assert adapter.word_embeddings(model).weight.shape == (VOCAB, hidden)
    assert isinstance(adapter.base_model(model), torch.nn.Module) and adapter.base_model(model) is not model
    x = torch.randn(5, hidden)                                    # (T, D)
    for layer in range(expected["layers"]):
        attention = adapter.self_attention(model, layer)
        assert attention in list(adapter.layers(model)[layer].modules())
        q, k, v = adapter.project_qkv(model, layer, x)
        assert q.shape == (5, heads, d) and k.shape == v.shape == (5, kv_heads, d)
        assert adapter.project_output(model, layer, torch.randn(heads * d)).shape == (hidden,)
        assert adapter.output_projection(model, layer) in list(adapter.layers(model)[layer].modules())
        assert (adapter.qk_norms(model, layer) is not None) == expected["qk_norm"]
        assert (adapter.input_norm(model, layer) is not None) == expected["input_norm"]
        assert adapter.attention_scale(model, layer) == pytest.approx(float(attention.scaling))
        module, when = adapter.after_attention_tap(model, layer)
        assert when in ("pre", "post") and module in list(adapter.layers(model)[layer].modules())
        after = adapter.after_attention(model, layer, torch.randn(5, hidden), torch.randn(5, hidden))
        assert after.shape == (5, hidden)


def test_embed_reproduces_what_enters_layer_zero(family):
    model_type, model, tokenizer, _ = family
    adapter = adapter_for(model)
    ids = _ids(tokenizer)
    entering = _input_of(adapter.layers(model)[0], model, **_run(model, ids))
    with torch.no_grad():
        torch.testing.assert_close(adapter.embed(model, ids[0]), entering[0], atol=1e-5, rtol=1e-5)


def test_final_norm_then_unembedding_gives_the_models_logits(family):
    model_type, model, tokenizer, _ = family
    adapter = adapter_for(model)
    hidden, logits = _last_layer_and_logits(adapter, model, _ids(tokenizer))
    with torch.no_grad():
        by_hand = adapter.unembedding(model)(adapter.final_norm(model)(hidden))  # (1, T, V)
        assert (by_hand - logits).abs().max().item() < 1e-4
        assert (adapter.logits(model, hidden) - logits).abs().max().item() < 1e-4


def test_gemma_logits_include_its_soft_capping_when_configured():
    model, tokenizer = tiny_gemma()
    model.config.final_logit_softcapping = 0.5   # tiny, so the cap really bends the logits
    adapter = adapter_for(model)
    hidden, logits = _last_layer_and_logits(adapter, model, _ids(tokenizer))
    assert logits.abs().max().item() < 0.5
    with torch.no_grad():
        assert (adapter.logits(model, hidden) - logits).abs().max().item() < 1e-4


@pytest.mark.parametrize("make", [tiny_gemma, tiny_gpt2], ids=["gemma3_text", "gpt2"])
def test_decoders_unembed_with_their_embedding_table(make):
    model, _ = make()
    adapter = adapter_for(model)
    assert adapter.unembedding(model).weight is adapter.word_embeddings(model).weight
    assert adapter.tied_embeddings(model)
    assert adapter.final_norm(model) in list(adapter.base_model(model).children())  # Gemma's norm, GPT-2's ln_f


def test_a_model_without_lm_head_says_which_class_to_load():
    from explain_models import tiny_bert, tiny_distilbert

    for make, fix in ((tiny_bert, "BertForMaskedLM"), (tiny_distilbert, "DistilBertForMaskedLM")):
        model, _ = make()
        adapter = adapter_for(model)
        assert isinstance(adapter.final_norm(model), torch.nn.Identity)  # post-norm: the last layer ends in a norm
        with pytest.raises(UnsupportedError, match=f"no masked-language-model head.*load {fix}"):
            adapter.unembedding(model)


def test_marian_reaches_both_stacks_and_cross_attention():
    model, tokenizer = tiny_marian()
    adapter = adapter_for(model)
    config = model.config
    assert len(adapter.layers(model, side="encoder")) == 2 and len(adapter.layers(model, side="decoder")) == 3
    assert adapter.num_heads(config, side="encoder") == 2 and adapter.num_heads(config) == 4
    assert adapter.layer_types(config, 2, side="encoder") == ["bidirectional"] * 2
    assert adapter.layer_types(config, 3, side="decoder") == ["full"] * 3
    assert adapter.cross_attention(model, 1) is model.model.decoder.layers[1].encoder_attn
    assert adapter.cross_attention_norm(model, 1) is model.model.decoder.layers[1].encoder_attn_layer_norm
    q, k, v = adapter.project_cross_qkv(model, 1, torch.randn(5, 16), torch.randn(7, 16))
    assert q.shape == (5, 4, 4) and k.shape == v.shape == (7, 4, 4)  # decoder queries, encoder keys and values
    q, k, v = adapter.project_qkv(model, 0, torch.randn(7, 16), side="encoder")
    assert q.shape == k.shape == v.shape == (7, 2, 8)
    assert adapter.embedding_scale(model) == pytest.approx(4.0)  # √16, as opus-mt models scale (scale_embedding)
    assert not adapter.explainable and adapter.facts.architecture == "encoder-decoder"
    with pytest.raises(Exception, match="side must be one of"):
        adapter.layers(model, side="middle")


def test_marian_encoder_embed_reproduces_its_layer_zero_input():
    model, tokenizer = tiny_marian()
    adapter = adapter_for(model)
    ids = _ids(tokenizer)
    entering = _input_of(adapter.layers(model, side="encoder")[0], model, input_ids=ids, decoder_input_ids=ids[:, :3])
    with torch.no_grad():
        torch.testing.assert_close(adapter.embed(model, ids[0], side="encoder"), entering[0], atol=1e-5, rtol=1e-5)


def test_an_unknown_family_is_refused_by_name_with_the_supported_ones():
    model, _ = tiny_llama()
    with pytest.raises(UnsupportedError, match="llama is not supported") as refused:
        adapter_for(model)
    message = str(refused.value)
    assert all(model_type in message for model_type in supported_families())
    assert "Gemma-3, BERT/MiniLM, GPT-2, DistilBERT and Marian" in message


def test_a_bidirectional_gemma_is_refused():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=4,
                              use_bidirectional_attention=True)
    model = Gemma3ForCausalLM._from_config(config, attn_implementation="eager")
    with pytest.raises(UnsupportedError, match="causal Gemma-3 models; this Gemma-3 uses bidirectional attention"):
        adapter_for(model)


def test_bert_configured_as_a_decoder_is_refused():
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, is_decoder=True)
    model = BertModel._from_config(config, attn_implementation="eager")
    with pytest.raises(UnsupportedError, match="BERT as an encoder; this BERT is configured as a decoder"):
        adapter_for(model)


def test_facts_are_plain_json_data():
    import json

    for adapter in ADAPTERS.values():
        facts = adapter.facts.to_json()
        assert json.loads(json.dumps(facts)) == facts
        assert facts["norm_placement"] in ("pre-norm", "post-norm", "pre+post (sandwich)")
        assert facts["positional"] in ("rope", "learned", "sinusoidal")
