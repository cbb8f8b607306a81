"""ModelService.lesson: every number of the Lesson tab comes from the model — the last layer's residual stream gives
the model's own logits, attention is the model's own (causal for the decoder, bidirectional for the encoder), and
each tokenizer's pieces add up to the sentence (a byte-level BPE's byte pieces shown as hex, never as mojibake)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from service import InvalidInputError, ModelService
from service.lesson import MAX_LESSON_TOKENS, LessonData
from service.lesson.tokenizers import (TRAINED_BPE_VOCABULARY, piece_label, tokenize, trained_byte_level_bpe,
                                       vocabulary_label)

REPO_ROOT = Path(__file__).resolve().parents[1]
TEXT = "The cat sat on the mat. 北京是中国的首都。"
HEX_GROUP = re.compile(r"<[0-9a-f]{2}(?: [0-9a-f]{2})*>")


@pytest.fixture(scope="module", params=["tiny-fewshot", "tiny"])
def service(request: pytest.FixtureRequest) -> ModelService:
    return ModelService(profile=request.param)


@pytest.fixture(scope="module")
def lesson(service: ModelService) -> LessonData:
    return service.lesson(TEXT)


def _generation(service: ModelService):
    return service.backend.model(service.backend.generation_key)


def _piece_bytes(label: str) -> bytes:
    """The bytes a byte-level label stands for: "Ġ" a space, "<e6 9c>" its bytes, any other character its UTF-8."""
    out = b""
    for part in re.split(r"(<[0-9a-f]{2}(?: [0-9a-f]{2})*>)", label):
        if HEX_GROUP.fullmatch(part):
            out += bytes.fromhex(part[1:-1].replace(" ", ""))
        else:
            out += part.replace("Ġ", " ").encode("utf-8")
    return out


# --- input checks -------------------------------------------------------------------------------------------------
def test_an_empty_text_is_refused_with_what_to_do() -> None:
    with pytest.raises(InvalidInputError, match="empty. Type some text"):
        ModelService(profile="tiny-fewshot").lesson("   ")


def test_a_text_past_the_lesson_limit_is_refused_naming_both_numbers() -> None:
    text = " ".join(["word"] * 100)
    refusal = rf"one short sentence: yours has \d+ tokens; the limit is {MAX_LESSON_TOKENS}"
    with pytest.raises(InvalidInputError, match=refusal):
        ModelService(profile="tiny-fewshot").lesson(text)


def test_importing_the_lesson_contract_loads_no_torch() -> None:
    code = "import sys, service.lesson; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"


# --- tokenizers ---------------------------------------------------------------------------------------------------
def test_three_tokenizations_come_in_order_generation_wordpiece_byte_level(service: ModelService,
                                                                          lesson: LessonData) -> None:
    first, wordpiece, byte_level = lesson.tokenizations
    assert first.ids == lesson.token_ids and first.vocabulary_size == len(_generation(service).tokenizer)
    assert wordpiece.scheme == "wordpiece" and byte_level.scheme == "byte-level-bpe"
    expected_first = {"tiny-fewshot": "sentencepiece", "tiny": "byte-level-bpe"}[service.profile]
    assert first.scheme == expected_first
    for tokenization in lesson.tokenizations:
        lengths = {len(tokenization.tokens), len(tokenization.raw), len(tokenization.ids), len(tokenization.special)}
        assert len(lengths) == 1 and tokenization.source and tokenization.name


def test_sentencepiece_and_byte_level_ids_decode_back_to_the_text_exactly(lesson: LessonData) -> None:
    first, _, byte_level = lesson.tokenizations
    assert first.decoded == TEXT and first.lossless
    assert byte_level.decoded == TEXT and byte_level.lossless


def test_wordpiece_decodes_back_lowercased_with_its_spacing_and_loses_one_character_per_unknown(
        lesson: LessonData) -> None:
    """WordPiece normalises: lower case, spaces around punctuation and CJK characters; an [UNK] loses its word
    (here one Chinese character each), so only the characters it knows come back, in order."""
    wordpiece = lesson.tokenizations[1]
    unknown = wordpiece.raw.count("[UNK]")
    decoded = "".join(wordpiece.decoded.split())
    original = "".join(TEXT.lower().split())
    remaining = iter(original)
    assert all(character in remaining for character in decoded)     # a subsequence of the text
    assert len(original) - len(decoded) == unknown and not wordpiece.lossless
    assert wordpiece.tokens[0] == "[CLS]" and wordpiece.tokens[-1] == "[SEP]"
    assert wordpiece.special[0] and wordpiece.special[-1]


def test_byte_level_pieces_are_hex_bytes_or_whole_characters_never_mojibake(lesson: LessonData) -> None:
    byte_level = lesson.tokenizations[2]
    assert b"".join(_piece_bytes(label) for label in byte_level.tokens) == TEXT.encode("utf-8")
    assert any(HEX_GROUP.fullmatch(label) for label in byte_level.tokens)         # 北 split into bytes
    for label in byte_level.tokens:
        readable = HEX_GROUP.sub("", label).lstrip("Ġ")
        assert readable in TEXT, f"{label!r} shows characters that are not in the text"
    assert any(len(label) == 1 and "\u4e00" <= label <= "\u9fff" for label in byte_level.tokens)   # a merged 的


def test_the_byte_level_bpe_trained_here_is_the_same_in_every_process() -> None:
    tokenizer = trained_byte_level_bpe()
    assert len(tokenizer) == TRAINED_BPE_VOCABULARY
    here = tokenize(tokenizer, TEXT, "", "").ids
    code = ("from service.lesson.tokenizers import tokenize, trained_byte_level_bpe;"
            f"print(tokenize(trained_byte_level_bpe(), {TEXT!r}, '', '').ids)")
    there = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert there.stdout.strip() == str(here)


@pytest.mark.parametrize(("piece", "scheme", "label"), [
    ("æľ", "byte-level-bpe", "<e6 9c>"), ("Ġcat", "byte-level-bpe", "Ġcat"), ("çĮ«", "byte-level-bpe", "猫"),
    ("Ġæľ", "byte-level-bpe", "Ġ<e6 9c>"), ("ą", "byte-level-bpe", "<05>"), ("Ċ", "byte-level-bpe", "↵"),
    ("▁cat", "sentencepiece", "▁cat"), ("<0xE6>", "sentencepiece", "<e6>"), ("猫", "sentencepiece", "猫"),
    ("##s", "wordpiece", "##s"),
])
def test_a_piece_is_labelled_by_what_it_holds(piece: str, scheme: str, label: str) -> None:
    assert piece_label(piece, scheme) == label


# --- embeddings ---------------------------------------------------------------------------------------------------
def test_embedding_cosine_is_symmetric_with_ones_on_its_diagonal(lesson: LessonData) -> None:
    count = len(lesson.tokens)
    assert lesson.embedding_cosine.shape == (count, count) and lesson.embedding_norms.shape == (count,)
    np.testing.assert_allclose(np.diag(lesson.embedding_cosine), 1.0, atol=1e-5)
    np.testing.assert_allclose(lesson.embedding_cosine, lesson.embedding_cosine.T, atol=1e-6)
    assert np.all(lesson.embedding_norms > 0)


def test_neighbours_are_five_other_rows_nearest_first(service: ModelService, lesson: LessonData) -> None:
    tokenizer = _generation(service).tokenizer
    assert len(lesson.neighbours) == len(lesson.tokens)
    for token_id, row in zip(lesson.token_ids, lesson.neighbours):
        labels, cosines = zip(*row)
        assert len(row) == 5 and vocabulary_label(tokenizer, token_id) not in labels
        assert list(cosines) == sorted(cosines, reverse=True) and all(-1.0 - 1e-6 <= c <= 1.0 + 1e-6 for c in cosines)


# --- the forward pass ---------------------------------------------------------------------------------------------
def test_next_token_logits_are_a_plain_forwards_last_position(service: ModelService, lesson: LessonData) -> None:
    import torch

    loaded = _generation(service)
    with loaded.lock, torch.inference_mode():
        plain = loaded.model(input_ids=torch.tensor([lesson.token_ids])).logits[0, -1].float().numpy()
    assert lesson.next_token_logits.shape == (len(loaded.tokenizer),) and lesson.next_token_logits.dtype == np.float32
    np.testing.assert_allclose(lesson.next_token_logits, plain, atol=1e-4)
    assert lesson.top_next_ids == [int(i) for i in np.argsort(-plain, kind="stable")[:20]]
    assert lesson.top_next_tokens == [vocabulary_label(loaded.tokenizer, i) for i in lesson.top_next_ids]


def test_the_last_layers_residual_stream_unembeds_to_the_models_logits(service: ModelService,
                                                                       lesson: LessonData) -> None:
    import torch

    from service.families import adapter_for
    from service.lesson.residual import residual_pass

    loaded = _generation(service)
    adapter = adapter_for(loaded.model)
    with loaded.lock, torch.inference_mode():
        hooked = residual_pass(loaded.model, lesson.token_ids)
        unembedded = adapter.logits(loaded.model, torch.from_numpy(hooked.layer_outputs[-1][-1])).float().numpy()
        embedded = adapter.embed(loaded.model, torch.tensor(lesson.token_ids)).float().numpy()   # (T, D)
    np.testing.assert_allclose(unembedded, lesson.next_token_logits, atol=1e-4)
    np.testing.assert_allclose(hooked.layer_inputs[0], embedded, atol=1e-5)                   # layer 0 reads embed
    np.testing.assert_allclose(hooked.layer_inputs[1:], hooked.layer_outputs[:-1], atol=1e-6)  # h_out → next h_in
    np.testing.assert_allclose(lesson.attention_change, hooked.attention_change, rtol=1e-6)


def test_sublayer_changes_and_norms_have_one_value_per_layer(service: ModelService, lesson: LessonData) -> None:
    layers = lesson.num_layers
    assert lesson.attention_change.shape == lesson.ffn_change.shape == (layers,)
    assert lesson.residual_norms.shape == (layers + 1,) and np.all(lesson.residual_norms > 0)
    assert np.all(lesson.attention_change > 0) and np.all(lesson.ffn_change > 0)
    np.testing.assert_allclose(lesson.residual_norms[0], lesson.embedding_norms.mean(), rtol=1e-5)
    assert len(lesson.decoder_layer_types) == layers and lesson.hidden_size > 0


def test_decoder_attention_is_the_models_causal_softmax(lesson: LessonData) -> None:
    count = len(lesson.tokens)
    assert lesson.decoder_attention.shape[2:] == (count, count)
    np.testing.assert_allclose(lesson.decoder_attention.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(lesson.decoder_attention, k=1) == 0)


def test_the_encoder_sees_both_ways_where_the_profile_has_one(service: ModelService, lesson: LessonData) -> None:
    if service.profile == "tiny-fewshot":   # one causal LM for every task: no encoder, no encoder-decoder
        assert lesson.encoder_model_name is lesson.encoder_tokens is lesson.encoder_attention is None
        assert lesson.encoder_decoder_model is None
        return
    assert lesson.encoder_model_name == "tiny-distilbert-sst2"
    assert lesson.encoder_decoder_model == "tiny-marian-en-zh"
    attention = lesson.encoder_attention
    assert attention.shape[2:] == (len(lesson.encoder_tokens),) * 2
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    assert np.triu(attention, k=1).sum() > 0.1 * attention.shape[0] * attention.shape[1]


def test_the_shared_model_keeps_its_fast_attention_kernel(service: ModelService, lesson: LessonData) -> None:
    assert _generation(service).model.config._attn_implementation == "sdpa"


# --- the call as a whole ------------------------------------------------------------------------------------------
def test_the_same_text_gives_identical_data(service: ModelService, lesson: LessonData) -> None:
    again = service.lesson(TEXT)
    first, second = lesson.to_json(), again.to_json()
    first.pop("timings"), second.pop("timings")
    assert first == second
    for name in ("next_token_logits", "decoder_attention", "embedding_cosine", "residual_norms"):
        assert np.array_equal(getattr(lesson, name), getattr(again, name)), name
    assert lesson.neighbours == again.neighbours


def test_to_json_is_json_ready_and_gives_only_the_shapes_of_the_big_arrays(lesson: LessonData) -> None:
    payload = lesson.to_json()
    json.dumps(payload, allow_nan=False)
    assert "next_token_logits" not in payload and "decoder_attention" not in payload
    assert payload["decoder_attention_shape"] == list(lesson.decoder_attention.shape)
    assert payload["next_token_logits_shape"] == [lesson.next_token_logits.shape[0]]
    assert len(payload["tokenizations"]) == 3 and len(payload["top_next_logits"]) == 20
    assert set(payload["timings"]) >= {"tokenizers", "forward", "embeddings", "encoder", "total"}


def test_the_lesson_waits_for_the_model_another_request_holds() -> None:
    service = ModelService(profile="tiny-fewshot")
    loaded = _generation(service)
    finished = threading.Event()
    worker = threading.Thread(target=lambda: (service.lesson("Hello there."), finished.set()), daemon=True)
    with loaded.lock:
        worker.start()
        time.sleep(0.5)
        assert not finished.is_set()
    worker.join(timeout=30)
    assert finished.is_set()


# --- the real embedded Gemma --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded() -> ModelService:
    return ModelService(profile="embedded")


@pytest.mark.slow
def test_real_gemma_lesson_on_the_cat_sentence(embedded: ModelService) -> None:
    import torch

    lesson = embedded.lesson("The cat sat on the mat.")
    print("timings", lesson.timings)
    assert lesson.model_name == "google/gemma-3-270m" and lesson.hidden_size == 640
    assert lesson.tokens == ["<bos>", "The", " cat", " sat", " on", " the", " mat", "."]
    names = [tokenization.name for tokenization in lesson.tokenizations]
    assert names == ["Gemma 3 · SentencePiece", "BERT / MiniLM · WordPiece", "byte-level BPE (GPT-2 style)"]
    assert lesson.tokenizations[0].tokens[2] == "▁cat" and lesson.tokenizations[0].vocabulary_size == 262_144
    assert lesson.tokenizations[1].decoded == "the cat sat on the mat."        # MiniLM is uncased
    cat = dict(lesson.neighbours[2])
    print("neighbours of ' cat':", lesson.neighbours[2])
    assert {"▁Cat", "▁cats", "▁dog"} <= set(cat) and all(cosine > 0.7 for cosine in cat.values())
    assert "▁The" in dict(lesson.neighbours[1])
    np.testing.assert_allclose(lesson.embedding_norms, lesson.embedding_norms[0], rtol=0.01)  # ≈ √640 × 1.03
    loaded = embedded.backend.model(embedded.backend.generation_key)
    with loaded.lock, torch.inference_mode():
        plain = loaded.model(input_ids=torch.tensor([lesson.token_ids])).logits[0, -1].float().numpy()
    np.testing.assert_allclose(lesson.next_token_logits, plain, atol=1e-4)
    print("attention_change", lesson.attention_change.round(2), "ffn_change", lesson.ffn_change.round(2))
    assert lesson.residual_norms[-2] > 100 * lesson.residual_norms[0]       # the stream grows layer by layer
    assert lesson.decoder_attention.shape == (18, 4, 8, 8) and lesson.encoder_attention.shape == (6, 12, 9, 9)
    assert lesson.decoder_layer_types.count("full") == 3
    assert lesson.encoder_model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert lesson.encoder_decoder_model is None


@pytest.mark.slow
def test_real_gemma_lesson_on_a_chinese_sentence(embedded: ModelService) -> None:
    lesson = embedded.lesson("我喜欢这部电影，演员的表演非常精彩。")
    gemma, minilm, byte_level = lesson.tokenizations
    print("Gemma:", gemma.tokens, "\nMiniLM:", minilm.tokens, "\nbyte-level BPE:", byte_level.tokens)
    assert gemma.tokens[1:5] == ["我", "喜欢", "这部", "电影"] and gemma.lossless
    assert minilm.raw.count("[UNK]") >= 10                 # MiniLM's English vocabulary knows few Chinese characters
    assert "<e8 a1>" in byte_level.tokens and "的" in byte_level.tokens   # 表 split into bytes; 的 merged whole
    assert byte_level.lossless
    film = dict(lesson.neighbours[gemma.tokens.index("电影")])
    print("neighbours of 电影:", lesson.neighbours[gemma.tokens.index("电影")])
    assert "電影" in film                                     # the Traditional spelling lies nearest
