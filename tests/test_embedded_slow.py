"""The four few-shot tasks on the real embedded Gemma-3-270M (slow: loads ~1 GB, converts it on first use)."""

from __future__ import annotations

import time

import pytest

from service.models.embedded import converted_model_dir, load_embedded_gemma, verify_cache
from service.tasks.fewshot import answer_fewshot, classify_fewshot, translate_fewshot
from service.text import detect_direction

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma():
    progress = []
    model, tokenizer = load_embedded_gemma("cpu", progress=lambda fraction, message: progress.append(fraction))
    assert progress and progress[-1] == 1.0
    return model, tokenizer


def test_loaded_model_is_ready_for_inference(gemma):
    model, tokenizer = gemma
    assert not model.training
    assert model.config._attn_implementation == "sdpa"
    assert str(model.dtype) == "torch.float32"
    assert verify_cache(converted_model_dir()) is not None          # the cache is complete and verified
    assert (converted_model_dir() / "tokenizer.json").exists()


def test_second_load_reads_the_cache_quickly(gemma):
    started = time.perf_counter()
    load_embedded_gemma("cpu")
    assert time.perf_counter() - started < 60                       # a conversion would take ~90 s


def test_fast_tokenizer_load_gives_the_same_tokenizer_as_auto_tokenizer(gemma):
    from transformers import AutoTokenizer

    _, fast = gemma                                                  # what load_embedded_gemma returns
    reference = AutoTokenizer.from_pretrained(converted_model_dir(), local_files_only=True)
    assert type(fast) is type(reference)
    assert fast.backend_tokenizer.to_str() == reference.backend_tokenizer.to_str()
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "all_special_ids",
                 "add_bos_token", "add_eos_token", "padding_side", "truncation_side", "model_max_length",
                 "clean_up_tokenization_spaces", "special_tokens_map"):
        assert getattr(fast, name) == getattr(reference, name), name
    assert fast.added_tokens_decoder == reference.added_tokens_decoder
    texts = ["Hello, world!", "机器学习正在改变世界。", "Review: 好吃\nSentiment: positive",
             "<bos>special<eos><pad><unk><mask> tokens", "<start_of_turn>user\nhi<end_of_turn>", "  spaces\t\n\n", ""]
    for text in texts:
        for add_special_tokens in (True, False):
            assert fast(text, add_special_tokens=add_special_tokens).input_ids == \
                reference(text, add_special_tokens=add_special_tokens).input_ids, text
        assert fast(text, return_offsets_mapping=True)["offset_mapping"] == \
            reference(text, return_offsets_mapping=True)["offset_mapping"]
        ids = reference(text).input_ids
        assert fast.decode(ids) == reference.decode(ids)
        assert fast.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)
        assert fast.convert_ids_to_tokens(ids) == reference.convert_ids_to_tokens(ids)
    assert fast("x").input_ids[0] == fast.bos_token_id                # <bos> is prepended, as generation expects


@pytest.mark.parametrize("text, label", [
    ("Absolutely wonderful! The best meal I have eaten this year.", "positive"),
    ("这部电影太精彩了，我非常喜欢！", "positive"),
    ("Terrible service, the room was dirty and nobody helped us.", "negative"),
    ("质量太差了，用了一天就坏了。", "negative"),
])
def test_clear_reviews_get_the_right_label(gemma, text, label):
    prediction = classify_fewshot(*gemma, text).prediction
    assert prediction["label"] == label
    assert prediction["score"] > 0.5


@pytest.mark.parametrize("context, question, expected", [
    ("Richard Feynman was an American physicist who received the Nobel Prize in 1965.",
     "Who received the Nobel Prize in 1965?", "Feynman"),
    ("黄河是中国第二长的河流，发源于青海省。", "黄河发源于哪里？", "青海"),
])
def test_qa_answer_is_the_context_span_at_its_offsets(gemma, context, question, expected):
    prediction = answer_fewshot(*gemma, context, question).prediction
    assert context[prediction["start"]:prediction["end"]] == prediction["answer"]
    assert expected in prediction["answer"]


def test_english_to_chinese_translation(gemma):
    text = "I like to read books."
    outcome = translate_fewshot(*gemma, text, detect_direction(text))
    assert outcome.prediction["direction"] == "en-zh"
    assert "书" in outcome.prediction["translation"]


def test_chinese_to_english_translation(gemma):
    text = "我喜欢喝茶。"
    outcome = translate_fewshot(*gemma, text, detect_direction(text))
    assert outcome.prediction["direction"] == "zh-en"
    assert "tea" in outcome.prediction["translation"].lower()


def test_generation_prompt_fits_the_attention_view(gemma):
    model, tokenizer = gemma
    outcome = answer_fewshot(model, tokenizer, "Bob moved to Oslo in 2010.", "Where did Bob move?")
    assert len(tokenizer(outcome.prompt + outcome.completion).input_ids) <= 256
