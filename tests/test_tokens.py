"""Display tokens are readable: markers decoded, split Chinese characters assembled, special tokens flagged."""

from __future__ import annotations

import pytest

from service.models.tiny import byte_level_tokenizer, gemma_like_tokenizer, sentencepiece_tokenizer, wordpiece_tokenizer
from service.attention.tokens import CONTINUATION_MARK, decode_pieces, display_tokens, tokenizer_kind

MOJIBAKE = set("ÃÂâåæäçéèĠĊ▁\ufffd")


def _labels(tokenizer, text: str) -> tuple[list[str], list[bool], list[str]]:
    ids = tokenizer(text)["input_ids"]
    labels, special = display_tokens(tokenizer, ids)
    return labels, special, tokenizer.convert_ids_to_tokens(ids)


def _without_marks(labels: list[str]) -> str:
    return "".join(label.replace(CONTINUATION_MARK, "") for label in labels)


def test_a_character_split_over_byte_tokens_shows_once_then_continuation_marks() -> None:
    assert decode_pieces([b"\xe6\x9c", b"\xba"]) == ["机", CONTINUATION_MARK]
    assert decode_pieces([b"\xe6", b"\x9c", b"\xba\xe5\x99\xa8"]) == ["机", CONTINUATION_MARK, CONTINUATION_MARK + "器"]


def test_bytes_that_never_complete_a_character_show_as_hex() -> None:
    assert decode_pieces([b"a", b"\xe6\x9c"]) == ["a", "<0xE6><0x9C>"]


def test_whitespace_tokens_are_visible() -> None:
    assert decode_pieces([b" ", b"\n", b"\t", b" the"]) == ["␣", "↵", "⇥", " the"]


@pytest.mark.parametrize(
    "make_tokenizer, kind",
    [
        (byte_level_tokenizer, "byte-level"),
        (gemma_like_tokenizer, "sentencepiece"),
        (sentencepiece_tokenizer, "sentencepiece"),
        (lambda: wordpiece_tokenizer(lowercase=False), "wordpiece"),
    ],
)
def test_each_tokenizer_family_is_recognised(make_tokenizer, kind: str) -> None:
    assert tokenizer_kind(make_tokenizer()) == kind


def test_byte_level_chinese_is_readable_and_in_order() -> None:
    text = "北京是中国的首都。"
    labels, special, pieces = _labels(byte_level_tokenizer(), text)
    assert any(set(piece) & MOJIBAKE for piece in pieces), "the raw pieces are byte soup: the test must see that"
    assert not any(set(label) & MOJIBAKE for label in labels), labels
    assert _without_marks(labels) == text
    assert CONTINUATION_MARK in "".join(labels)
    assert not any(special)


def test_byte_level_spaces_are_decoded() -> None:
    labels, _, pieces = _labels(byte_level_tokenizer(), "The quick brown fox")
    assert any(piece.startswith("Ġ") for piece in pieces)
    assert "".join(labels).replace("␣", " ") == "The quick brown fox"
    assert not any("Ġ" in label for label in labels)


def test_sentencepiece_byte_fallback_assembles_unseen_chinese_characters() -> None:
    tokenizer = gemma_like_tokenizer()
    labels, special, pieces = _labels(tokenizer, "北京首都")
    assert "<0xE4>" in pieces  # 京 was never seen in training: it arrives as three byte tokens
    assert labels[0] == "<bos>" and special[0]
    assert _without_marks(labels[1:]) == "北京首都"
    assert labels[labels.index("京") + 1] == CONTINUATION_MARK


def test_sentencepiece_space_marker_is_decoded_and_eos_is_special() -> None:
    labels, special, pieces = _labels(sentencepiece_tokenizer(), "The fox")
    assert pieces[0].startswith("▁")
    assert labels[0] == " The"
    assert labels[-1] == "</s>" and special[-1]
    assert not any("▁" in label for label in labels)


def test_wordpiece_continuations_join_words_and_specials_are_flagged() -> None:
    tokenizer = wordpiece_tokenizer(lowercase=False)
    labels, special, pieces = _labels(tokenizer, "The fox played, 北京")
    assert any(piece.startswith("##") for piece in pieces)
    assert not any(label.startswith("##") for label in labels)
    assert labels[0] == "[CLS]" and labels[-1] == "[SEP]" and special[0] and special[-1]
    assert "[UNK]" in labels and special[labels.index("[UNK]")]  # 京 is not in the tiny vocabulary
    assert "".join(label for label, is_special in zip(labels, special) if not is_special) == "The fox played,北"
