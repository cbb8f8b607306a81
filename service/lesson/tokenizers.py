"""Three tokenizers' views of one sentence (SentencePiece, WordPiece, byte-level BPE), piece by piece.

The attention views assemble a character split over several tokens (service/attention/tokens.py: "机", "·"); the
Lesson shows what each piece holds on its own, so the split stays visible:

    a piece's complete UTF-8 characters show as themselves (CJK as characters),
    bytes that are only part of a character show as hex, e.g. "<e6 9c>" (byte-level BPE; SentencePiece byte
    fallback "<0xE6>" shows as "<e6>"),
    word-start markers stay: "▁cat" (SentencePiece), "Ġcat" (byte-level BPE), "##s" (a WordPiece continuation).

When the profile has no byte-level BPE of its own (embedded: GPT-2's 50,257-entry vocabulary is not installed
offline), one is trained here with GPT-2's algorithm on the app's own example sentences (service/tasks/pools/),
once per process; a WordPiece vocabulary is built from the same sentences when the profile has no encoder
(tiny-fewshot).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

from service.attention.tokens import _piece_bytes, tokenizer_kind
from service.lesson.data import Tokenization

TRAINED_BPE_VOCABULARY = 2_000        # entries of the byte-level BPE trained here (256 bytes + merges + 1 special)
TRAINED_WORDPIECE_VOCABULARY = 2_000
SCHEMES = {"sentencepiece": "SentencePiece", "wordpiece": "WordPiece", "byte-level-bpe": "byte-level BPE"}
_KIND_TO_SCHEME = {"sentencepiece": "sentencepiece", "wordpiece": "wordpiece", "byte-level": "byte-level-bpe"}
_VISIBLE = {"\n": "↵", "\t": "⇥", "\r": ""}


def scheme_of(tokenizer: Any) -> str:
    """"sentencepiece" | "wordpiece" | "byte-level-bpe" (how its vocabulary marks spaces and bytes); "plain" else."""
    return _KIND_TO_SCHEME.get(tokenizer_kind(tokenizer), "plain")


def tokenize(tokenizer: Any, text: str, name: str, source: str) -> Tokenization:
    """`text` as `tokenizer` reads it (with the specials it adds: <bos>, [CLS] … [SEP]), piece by piece."""
    ids = [int(token_id) for token_id in tokenizer(text)["input_ids"]]
    raw = [piece or "" for piece in tokenizer.convert_ids_to_tokens(ids)]
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    special = [token_id in special_ids for token_id in ids]
    scheme = scheme_of(tokenizer)
    tokens = [piece if is_special else piece_label(piece, scheme) for piece, is_special in zip(raw, special)]
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    return Tokenization(name=name, scheme=scheme, vocabulary_size=len(tokenizer), tokens=tokens, raw=raw, ids=ids,
                        special=special, source=source, decoded=decoded, lossless=decoded == text)


def vocabulary_label(tokenizer: Any, token_id: int) -> str:
    """One vocabulary entry on its own, as Tokenization.tokens shows pieces (specials by name)."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id)) or ""
    if int(token_id) in set(getattr(tokenizer, "all_special_ids", []) or []):
        return piece
    return piece_label(piece, scheme_of(tokenizer))


def piece_label(piece: str, scheme: str) -> str:
    """What one vocabulary piece holds, readable on its own: "▁cat", "Ġcat", "##s", "猫", "<e6 9c>", "<e6>";
    control characters as their byte ("<05>"), newlines and tabs as "↵" and "⇥"."""
    if scheme == "wordpiece":
        return piece
    if scheme == "byte-level-bpe":
        return _bytes_label(_piece_bytes(piece, "byte-level"), space="Ġ")
    return _bytes_label(_piece_bytes(piece, "sentencepiece"), space="\u2581")   # "▁" and "<0xE6>" → bytes


def _bytes_label(data: bytes, space: str) -> str:
    """Complete UTF-8 characters as themselves, each run of bytes that is not a whole character as "<e6 9c>"."""
    parts: list[str] = []
    loose: list[int] = []
    position = 0
    while position < len(data):
        character, length = _character_at(data, position)
        if character is None or (unicodedata.category(character) == "Cc" and character not in _VISIBLE):
            loose.append(data[position])
            position += 1
            continue
        if loose:
            parts.append("<" + " ".join(f"{byte:02x}" for byte in loose) + ">")
            loose = []
        parts.append(space if character == " " else _VISIBLE.get(character, character))
        position += length
    if loose:
        parts.append("<" + " ".join(f"{byte:02x}" for byte in loose) + ">")
    return "".join(parts)


def _character_at(data: bytes, position: int) -> tuple[str | None, int]:
    """(the UTF-8 character starting at `position`, its length), or (None, 0) when the piece holds only part of it."""
    lead = data[position]
    length = 1 if lead < 0x80 else 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else \
        4 if 0xF0 <= lead <= 0xF4 else 0
    if not length or position + length > len(data):
        return None, 0
    try:
        return data[position:position + length].decode("utf-8"), length
    except UnicodeDecodeError:
        return None, 0


# --- tokenizers trained here ------------------------------------------------------------------------
def pool_texts() -> list[str]:
    """Every sentence of the app's example pools (service/tasks/pools/*.jsonl), English and Chinese, in file order."""
    from service.tasks.demonstrations import load_pool

    texts: list[str] = []
    for item in load_pool("sentiment"):
        texts.append(item["text"])
    for item in load_pool("qa"):
        texts.extend((item["context"], item["question"], item["answer"]))
    for item in load_pool("translation"):
        texts.extend((item["en"], item["zh"]))
    return texts


@lru_cache(maxsize=1)
def trained_byte_level_bpe() -> Any:
    """GPT-2's algorithm (ByteLevel pre-tokenizer and decoder, BPE merges learned by BpeTrainer) with a
    TRAINED_BPE_VOCABULARY-entry vocabulary learned from pool_texts(); deterministic, built once per process."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TRAINED_BPE_VOCABULARY, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(pool_texts(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", unk_token="<|endoftext|>")


@lru_cache(maxsize=1)
def trained_wordpiece() -> Any:
    """BERT's WordPiece (lower-casing BertNormalizer, BertPreTokenizer, greedy longest match, [CLS] … [SEP]) over a
    TRAINED_WORDPIECE_VOCABULARY-entry vocabulary built from pool_texts(): the specials, every character seen (and its
    "##" continuation), then the most frequent words (ties alphabetical). Built, not trained: tokenizers'
    WordPieceTrainer breaks ties differently in every process, and the lesson must repeat."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in pool_texts():
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({character for word in words for character in word})
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + characters + ["##" + c for c in characters]
    known = set(vocabulary)
    frequent = [word for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])) if word not in known]
    vocabulary += frequent[:max(0, TRAINED_WORDPIECE_VOCABULARY - len(vocabulary))]
    backend = Tokenizer(models.WordPiece({piece: index for index, piece in enumerate(vocabulary)}, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def trained_source(algorithm: str, vocabulary_size: int, missing: str) -> str:
    """The honest sentence for a tokenizer trained here."""
    return (f"{algorithm}'s algorithm, with a {vocabulary_size:,}-entry vocabulary trained here on the app's own "
            f"example sentences: {missing}")


TRAINED_BPE_SOURCE = trained_source(
    "GPT-2", TRAINED_BPE_VOCABULARY, "GPT-2's own 50,257-entry vocabulary is not installed offline")
TRAINED_WORDPIECE_SOURCE = ("BERT's algorithm, with a vocabulary built here from the app's own example sentences "
                            "(every character, then their most frequent words): this profile has no encoder whose own "
                            "WordPiece vocabulary could be shown")
