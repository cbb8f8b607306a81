"""The grouped eager kernel: the same attention weights and outputs as transformers' eager on a grouped-query
Gemma-3, for causal, padded-batch and soft-capped inputs; capture picks it only where the family allows."""

import pytest
import torch
import transformers as tf

from service.attention.capture import eager_attention
from service.attention.grouped_eager import GROUPED_EAGER
from service.models.tiny import load_tiny


def _gemma(softcap: float | None = None) -> torch.nn.Module:
    torch.manual_seed(3)
    config = tf.Gemma3TextConfig(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, sliding_window=6, attn_logit_softcapping=softcap,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    )
    return tf.Gemma3ForCausalLM._from_config(config, attn_implementation="eager").eval()


def _both(model: torch.nn.Module, **inputs: torch.Tensor) -> tuple[object, object]:
    with torch.inference_mode():
        model.set_attn_implementation("eager")
        plain = model(**inputs, output_attentions=True)
        model.set_attn_implementation(GROUPED_EAGER)
        grouped = model(**inputs, output_attentions=True)
    return plain, grouped


@pytest.mark.parametrize("softcap", [None, 20.0])
def test_grouped_equals_eager_on_a_causal_prompt_every_layer(softcap: float | None) -> None:
    plain, grouped = _both(_gemma(softcap), input_ids=torch.randint(0, 300, (1, 13)))      # window 6 < 13 tokens
    torch.testing.assert_close(grouped.logits, plain.logits, rtol=0, atol=1e-5)
    for plain_layer, grouped_layer in zip(plain.attentions, grouped.attentions, strict=True):
        assert grouped_layer.shape == plain_layer.shape == (1, 4, 13, 13)
        torch.testing.assert_close(grouped_layer, plain_layer, rtol=0, atol=1e-6)


def test_grouped_equals_eager_on_a_left_padded_batch() -> None:
    ids = torch.randint(0, 300, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0                                                                  # a row with 4 pads first
    mask[2, :1] = 0
    plain, grouped = _both(_gemma(), input_ids=ids, attention_mask=mask)
    for plain_layer, grouped_layer in zip(plain.attentions, grouped.attentions, strict=True):
        torch.testing.assert_close(grouped_layer, plain_layer, rtol=0, atol=1e-6)
    assert float(grouped.attentions[0][1, :, 5, :4].abs().max()) == 0.0              # pads get no weight
    torch.testing.assert_close(grouped.logits[mask.bool()], plain.logits[mask.bool()], rtol=0, atol=1e-5)


def test_capture_switches_grouped_query_gemma_to_it_and_other_families_to_plain_eager() -> None:
    gemma = _gemma()
    gemma.set_attn_implementation("sdpa")
    with eager_attention(gemma):
        assert gemma.config._attn_implementation == GROUPED_EAGER
    assert gemma.config._attn_implementation == "sdpa"
    gpt2 = load_tiny("generation").model                                            # GPT-2: no grouped heads
    with eager_attention(gpt2):
        assert gpt2.config._attn_implementation == "eager"
