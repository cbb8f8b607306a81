"""The embedded profile on the real Gemma-3-270M (slow): generation, few-shot tasks, readable Chinese tokens."""

from __future__ import annotations

import numpy as np
import pytest

from service import ModelService

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded() -> ModelService:
    return ModelService("embedded")


def test_generation_on_gemma_captures_all_layers_with_sliding_windows(embedded: ModelService) -> None:
    result = embedded.generate("机器学习是", max_new_tokens=6)
    tokens = result.decoder_tokens
    assert result.model_name == "google/gemma-3-270m"
    assert result.decoder_attention.shape == (18, 4, len(tokens), len(tokens))  # (layer, head, query, key)
    np.testing.assert_allclose(result.decoder_attention.sum(-1), 1.0, atol=1e-3)
    assert result.num_key_value_heads == 1
    assert set(result.layer_types) == {"full", "sliding:512"}
    assert tokens[0] == "<bos>" and result.decoder_special[0]
    assert "机" in "".join(tokens) and "\ufffd" not in "".join(tokens)
    assert embedded.explain_models() == ["default", "minilm"]


def test_fewshot_sentiment_and_translation_on_gemma(embedded: ModelService) -> None:
    sentiment = embedded.classify("I loved every minute of it, a wonderful film.")
    assert sentiment.prediction["label"] == "positive"
    text = next(segment for segment in sentiment.segments if segment.name == "text")
    assert text.role == "input" and "wonderful" in "".join(sentiment.decoder_tokens[text.start:text.end])
    translation = embedded.translate("The weather is nice today.")
    assert translation.prediction["direction"] == "en-zh"
    assert any("\u4e00" <= char <= "\u9fff" for char in translation.prediction["translation"])
    assert translation.decoder_attention.shape[-1] == len(translation.decoder_tokens)
