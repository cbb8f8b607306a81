"""Every task × model family on tiny random models: shapes, tokens, segments, predictions, truncation notices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from service import AttentionResult, ModelService
from service.models.tiny import load_tiny

CONTEXT = "Richard Feynman won the Nobel Prize in Physics in 1965. He worked at Caltech in Pasadena."
QUESTION = "Where did Feynman work?"
LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)


@pytest.fixture(scope="module")
def tiny() -> ModelService:
    return ModelService("tiny")


@pytest.fixture(scope="module")
def fewshot() -> ModelService:
    return ModelService("tiny-fewshot")


@pytest.fixture(scope="module")
def capped() -> ModelService:
    return ModelService("tiny", max_attention_tokens=8)


def _assert_rows_are_distributions(attention: np.ndarray) -> None:
    assert attention.dtype == np.float32
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-4)


def _assert_causal(attention: np.ndarray) -> None:
    upper = np.triu(np.ones(attention.shape[-2:], dtype=bool), k=1)  # (query_pos, key_pos) above the diagonal
    assert np.all(attention[..., upper] == 0)


def _assert_json_ready(result: AttentionResult) -> None:
    text = json.dumps(result.to_json())
    assert json.loads(text)["prediction"] == result.prediction


# --- specialists (tiny profile) --------------------------------------------------------------------
def test_generation_attention_covers_prompt_and_continuation(tiny: ModelService) -> None:
    result = tiny.generate("The quick brown fox", max_new_tokens=6, min_new_tokens=6)
    tokens = result.decoder_tokens
    assert result.architecture == "decoder" and result.model_name == "tiny-gpt2"
    assert result.decoder_attention.shape == (2, 2, len(tokens), len(tokens))  # (layer, head, query, key)
    _assert_rows_are_distributions(result.decoder_attention)
    _assert_causal(result.decoder_attention)
    names = [(segment.name, segment.start, segment.end) for segment in result.segments]
    assert names[0][0] == "prompt" and names[1] == ("generated", len(tokens) - 6, len(tokens))
    assert isinstance(result.prediction["text"], str)
    assert result.layer_types == ["full", "full"] and result.num_key_value_heads is None
    assert result.encoder_attention is None and result.cross_attention is None
    _assert_json_ready(result)


def test_captured_attention_equals_what_generation_computed(tiny: ModelService) -> None:
    result = tiny.generate("The lazy dog", max_new_tokens=4, min_new_tokens=4)
    loaded = load_tiny("generation")
    ids = loaded.tokenizer("The lazy dog", return_tensors="pt")["input_ids"]  # (1, prompt_len)
    with loaded.lock, torch.inference_mode():
        loaded.model.set_attn_implementation("eager")
        try:
            steps = loaded.model.generate(
                ids, max_new_tokens=4, min_new_tokens=4, do_sample=False, output_attentions=True,
                return_dict_in_generate=True, pad_token_id=loaded.tokenizer.eos_token_id,
            ).attentions
        finally:
            loaded.model.set_attn_implementation("sdpa")
    last_step = np.stack([layer[0, :, -1].float().numpy() for layer in steps[-1]])  # (layer, head, key_pos)
    query = ids.shape[1] + 2  # the last token generation attended from
    np.testing.assert_allclose(result.decoder_attention[:, :, query, : query + 1], last_step, atol=1e-5)


def test_qa_answer_is_a_span_of_the_original_context(tiny: ModelService) -> None:
    result = tiny.answer(CONTEXT, QUESTION)
    prediction = result.prediction
    assert result.architecture == "encoder" and result.model_name == "tiny-distilbert-qa"
    assert CONTEXT[prediction["start"] : prediction["end"]] == prediction["answer"]
    assert prediction["answer"] and 0.0 <= prediction["score"] <= 1.0
    tokens = result.encoder_tokens
    assert result.encoder_attention.shape == (2, 2, len(tokens), len(tokens))
    _assert_rows_are_distributions(result.encoder_attention)
    names = [segment.name for segment in result.segments]
    assert names[:2] == ["first token", "question"] and "answer" in names and set(names[2:]) == {"context", "answer"}
    answer = next(segment for segment in result.segments if segment.name == "answer")
    assert answer.role == "output" and "".join(tokens[answer.start:answer.end]).replace("##", "").strip()
    assert all(segment.side == "encoder" for segment in result.segments)
    assert tokens[0] == "[CLS]" and result.encoder_special[0]
    _assert_json_ready(result)


def test_sentiment_gives_a_label_with_its_probability(tiny: ModelService) -> None:
    result = tiny.classify("I loved this movie, the acting was wonderful.")
    assert result.prediction["label"] in ("positive", "negative")
    assert 0.5 <= result.prediction["score"] <= 1.0
    assert sum(result.prediction["scores"].values()) == pytest.approx(1.0)
    tokens = result.encoder_tokens
    assert result.encoder_attention.shape == (2, 2, len(tokens), len(tokens))
    assert [(segment.name, segment.role) for segment in result.segments] == [("classifier token", "output"),
                                                                              ("text", "input")]
    _assert_json_ready(result)


@pytest.mark.parametrize(
    "text, direction", [("机器学习正在改变世界。", "zh-en"), ("Machine learning is changing the world.", "en-zh")]
)
def test_translation_detects_direction_and_returns_three_attentions(tiny: ModelService, text: str, direction: str) -> None:
    result = tiny.translate(text)
    assert result.prediction["direction"] == direction
    assert result.model_name == f"tiny-marian-{direction}"
    source, target = len(result.encoder_tokens), len(result.decoder_tokens)
    assert result.architecture == "encoder-decoder"
    assert result.encoder_attention.shape == (2, 2, source, source)
    assert result.decoder_attention.shape == (2, 2, target, target)
    assert result.cross_attention.shape == (2, 2, target, source)  # (layer, head, decoder_pos, encoder_pos)
    _assert_rows_are_distributions(result.cross_attention)
    _assert_causal(result.decoder_attention)
    assert result.encoder_tokens[-1] == "</s>" and result.encoder_special[-1]
    assert result.decoder_tokens[0] == "<pad>" and result.decoder_special[0]  # Marian's decoder start token
    _assert_json_ready(result)


def test_translation_direction_can_be_forced(tiny: ModelService) -> None:
    result = tiny.translate("机器学习", direction="en-zh")
    assert result.prediction["direction"] == "en-zh" and result.model_name == "tiny-marian-en-zh"


def test_model_names_per_task(tiny: ModelService) -> None:
    assert tiny.model_name("generation") == "tiny-gpt2"
    assert tiny.model_name("translation") == "tiny-marian-en-zh + tiny-marian-zh-en"
    assert ModelService("hub").model_name("qa") == "distilbert/distilbert-base-cased-distilled-squad"
    assert ModelService("tiny-fewshot").model_name("sentiment") == "tiny-gemma3"


def test_load_reports_progress(tiny: ModelService) -> None:
    calls: list[tuple[float, str]] = []
    ModelService("tiny").load("translation", progress=lambda fraction, message: calls.append((fraction, message)))
    assert calls[0][0] == 0.0 and calls[-1][0] == 1.0 and "tiny-marian" in calls[-1][1]


# --- truncation ------------------------------------------------------------------------------------
def test_long_generation_keeps_the_last_positions_with_a_notice(capped: ModelService) -> None:
    result = capped.generate("The quick brown fox jumps over", max_new_tokens=5, min_new_tokens=5)
    assert len(result.decoder_tokens) == 8 and result.decoder_attention.shape[-2:] == (8, 8)
    assert any("last 8 of" in notice for notice in result.notices)
    row_sums = result.decoder_attention.sum(-1)  # (layer, head, query_pos)
    assert np.all(row_sums <= 1.0 + 1e-5) and np.any(row_sums < 0.99)  # attention to hidden tokens is missing
    assert result.segments[-1] == type(result.segments[-1])("generated", 3, 8, role="output")


@pytest.mark.parametrize("task", ["qa", "sentiment", "translation"])
def test_long_specialist_input_is_truncated_where_the_model_reads_it(capped: ModelService, task: str) -> None:
    if task == "qa":
        result = capped.answer(LONG_TEXT, "Who?")
    elif task == "sentiment":
        result = capped.classify(LONG_TEXT)
    else:
        result = capped.translate(LONG_TEXT)
    assert "Input truncated to 8 tokens." in result.notices
    assert len(result.encoder_tokens) == 8 and result.encoder_attention.shape[-1] == 8
    if task == "translation":
        assert len(result.decoder_tokens) <= 8
    if task == "qa":
        assert LONG_TEXT[result.prediction["start"] : result.prediction["end"]] == result.prediction["answer"]


def test_short_inputs_have_no_notice(tiny: ModelService) -> None:
    assert tiny.classify("Nice film.").notices == []


# --- few-shot path (tiny random Gemma-3) -----------------------------------------------------------
@pytest.mark.parametrize("task", ["sentiment", "qa", "translation", "generation"])
def test_fewshot_tasks_return_decoder_attention_over_prompt_and_completion(fewshot: ModelService, task: str) -> None:
    if task == "sentiment":
        result = fewshot.classify("I loved this movie.")
    elif task == "qa":
        result = fewshot.answer("Marie Curie was born in Warsaw.", "Where was she born?")
    elif task == "translation":
        result = fewshot.translate("北京是中国的首都。")
    else:
        result = fewshot.generate("北京是", max_new_tokens=4, min_new_tokens=4)
    tokens = result.decoder_tokens
    assert result.architecture == "decoder" and result.model_name == "tiny-gemma3" and result.task == task
    assert result.decoder_attention.shape == (4, 4, len(tokens), len(tokens))
    _assert_causal(result.decoder_attention)
    assert result.layer_types == ["sliding:16", "sliding:16", "sliding:16", "full"]
    assert result.num_key_value_heads == 1
    assert result.prompt
    if task != "generation":
        names = [segment.name for segment in result.segments]
        assert names[-1] == "answer" and result.segments[-1].role == "output"
        if not result.notices:  # the whole prompt is kept: it starts with <bos>, the sink, then the instruction
            assert names[:2] == ["first token", "instruction"]
        assert all(0 <= s.start < s.end <= len(tokens) for s in result.segments)
        assert all(a.end <= b.start for a, b in zip(result.segments, result.segments[1:]))  # no overlap
    _assert_json_ready(result)


def test_fewshot_qa_and_translation_predictions_follow_the_contract(fewshot: ModelService) -> None:
    context = "Marie Curie was born in Warsaw."
    answer = fewshot.answer(context, "Where was she born?").prediction
    assert context[answer["start"] : answer["end"]] == answer["answer"]
    assert fewshot.translate("Good morning.").prediction["direction"] == "en-zh"
    label = fewshot.classify("Terrible.").prediction
    assert label["label"] in ("positive", "negative") and 0.0 <= label["score"] <= 1.0


def test_fewshot_sliding_window_layers_see_only_recent_tokens(fewshot: ModelService) -> None:
    result = fewshot.classify("I loved this movie.")
    attention = result.decoder_attention  # (layer, head, query_pos, key_pos), last positions of the sequence
    last = attention.shape[-1] - 1
    assert np.all(attention[0, :, last, : last - 16 + 1] == 0)  # sliding layer: window of 16
    assert np.any(attention[3, :, last, : last - 16 + 1] > 0)  # full layer reaches further back


# --- few-shot attention is captured while the model runs ---------------------------------------------------
def _fewshot_outcome(task: str, loaded):
    from service.tasks.fewshot import answer_fewshot, classify_fewshot, translate_fewshot

    long_context = " ".join(["Marie Curie was born in Warsaw and moved to Paris."] * 3)  # past the 16-token window
    with loaded.lock, torch.inference_mode():
        if task == "sentiment":
            return classify_fewshot(loaded.model, loaded.tokenizer, "I loved this movie.")
        if task == "qa":
            return answer_fewshot(loaded.model, loaded.tokenizer, long_context, "Where was she born?")
        return translate_fewshot(loaded.model, loaded.tokenizer, "北京是中国的首都。", "zh-en")


@pytest.mark.usefixtures("whole_matrices")
@pytest.mark.parametrize("task", ["sentiment", "qa", "translation"])
def test_fewshot_attention_captured_while_running_equals_a_separate_eager_pass(task: str) -> None:
    from service.attention import capture
    from service.backends.fewshot import fewshot_result

    loaded = load_tiny("fewshot")
    outcome = _fewshot_outcome(task, loaded)
    captured = outcome.attention
    assert captured is not None and loaded.model.config._attn_implementation == "sdpa"
    with loaded.lock, torch.inference_mode():
        separate = capture.decoder_attention(loaded.model, torch.tensor([captured.token_ids]))  # (layer, head, T, T)
    np.testing.assert_allclose(captured.matrix(len(captured.token_ids)), separate, atol=1e-5)

    # The result is over the re-tokenised prompt + completion: the captured rows when those are the same tokens
    # (a real model's usual case; this random one's garbage translation may not round-trip), else one eager pass.
    ids = loaded.tokenizer(outcome.prompt + outcome.completion).input_ids
    if task in ("sentiment", "qa"):
        assert captured.covers(ids)
    with loaded.lock, torch.inference_mode():                # as ModelService calls it
        result = fewshot_result(loaded, task, outcome, max_attention_tokens=4096)
        expected = capture.decoder_attention(loaded.model, torch.tensor([ids]))  # (layer, head, T, T)
    assert loaded.model.config._attn_implementation == "sdpa"
    assert result.decoder_attention.shape == expected.shape
    np.testing.assert_allclose(result.decoder_attention, expected, atol=1e-5)


def test_fewshot_generation_that_hits_its_token_limit_still_gets_its_last_row() -> None:
    from service.attention import capture
    from service.tasks.lm_calls import generate_line as _generate_line

    loaded = load_tiny("fewshot")
    with loaded.lock, torch.inference_mode():
        line = _generate_line(loaded.model, loaded.tokenizer, "Translate: " * 12, 6, capture_attention=True)
    captured = line.attention
    prompt_length = len(loaded.tokenizer("Translate: " * 12).input_ids)
    kept = prompt_length + len(line.logprobs)
    if captured.pending is None:
        pytest.skip("this random model stopped before its token limit")
    with loaded.lock, torch.inference_mode():
        separate = capture.decoder_attention(loaded.model, torch.tensor([captured.token_ids + [captured.pending[0]]]))
        attention = capture.captured_attention(loaded.model, captured, kept)
    np.testing.assert_allclose(attention, separate[:, :, :kept, :kept], atol=1e-5)


@pytest.mark.usefixtures("whole_matrices")
def test_fewshot_attention_cap_keeps_the_last_positions_of_the_captured_rows() -> None:
    from service.backends.fewshot import fewshot_result

    loaded = load_tiny("fewshot")
    outcome = _fewshot_outcome("qa", loaded)
    with loaded.lock, torch.inference_mode():
        full = fewshot_result(loaded, "qa", outcome, max_attention_tokens=4096)
        capped_result = fewshot_result(loaded, "qa", outcome, max_attention_tokens=24)
    assert capped_result.decoder_attention.shape[-1] == 24 and capped_result.notices
    np.testing.assert_array_equal(capped_result.decoder_attention, full.decoder_attention[:, :, -24:, -24:])
    assert capped_result.decoder_tokens == full.decoder_tokens[-24:]
    assert capped_result.segments[-1].name == "answer" and capped_result.segments[-1].end == 24


@pytest.mark.usefixtures("whole_matrices")
def test_fewshot_sentiment_runs_one_forward_per_request_after_the_first() -> None:
    from service.tasks.lm_calls import CALIBRATIONS as _CALIBRATIONS

    service = ModelService("tiny-fewshot")
    loaded = load_tiny("fewshot", service.device)          # the instance the service runs
    _CALIBRATIONS.pop(loaded.model, None)                  # as if this model had never classified anything
    calls = []
    hook = loaded.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        first = service.classify("I loved this movie.")
        after_first = len(calls)
        for text in ("Terrible.", "这家店的服务太差了。", "I loved this movie."):
            before = len(calls)
            result = service.classify(text)
            assert len(calls) - before == 1                # the query only: calibration is cached, attention reused
    finally:
        hook.remove()
    assert after_first == 2                                # the first request also computes the calibration probe
    assert result.prediction == first.prediction
    np.testing.assert_array_equal(result.decoder_attention, first.decoder_attention)
    assert loaded.model.config._attn_implementation == "sdpa"


def test_explain_shape_is_known_without_loading_once_a_config_is_on_disk(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = ModelService("tiny")
    assert fresh.explain_shape() is None                  # nothing loaded, no config on disk: unknown, nothing loaded
    fresh.load("generation")
    config = fresh.backend.model(fresh.backend.generation_key).model.config
    assert fresh.explain_shape() == (config.num_hidden_layers, config.num_attention_heads)
    # The embedded profile reads the converted model's config.json instead of loading Gemma.
    monkeypatch.setenv("ATTENTION_ATLAS_CACHE", str(tmp_path))
    embedded = ModelService("embedded")
    assert embedded.explain_shape() is None
    (tmp_path / "gemma-3-270m").mkdir()
    (tmp_path / "gemma-3-270m" / "config.json").write_text(
        json.dumps({"num_hidden_layers": 18, "num_attention_heads": 4}), encoding="utf-8")
    assert embedded.explain_shape() == (18, 4) and not embedded.backend.loaded_keys()
    assert embedded.explain_shape("minilm") == (6, 12)    # the packaged MiniLM's own config
