"""Display tokens: readable strings for token ids (byte-level BPE, SentencePiece and WordPiece markers decoded).

Every token is first turned into the bytes (or text) it contributes to the decoded string; a UTF-8 decoder then
walks the whole sequence, so a character split over several tokens (byte-level BPE or SentencePiece byte
fallback, common for Chinese) is never shown as mojibake:

    the token holding the character's FIRST byte shows the character itself,
    each later token holding only the rest of its bytes starts with CONTINUATION_MARK ("·"),
    e.g. 机 split over two byte tokens shows as ["机", "·"].

A leading space stays a space (" the"); whitespace-only tokens show as "␣", newlines as "↵", tabs as "⇥".
WordPiece continuations ("##ing") show without the marker and without a space; word starts get a space,
like byte-level BPE shows them. Special tokens (<bos>, [CLS], </s>...) keep their name and are flagged special.
Bytes that never complete a character are shown as "<0xE6>".
"""

from __future__ import annotations

import json
import weakref
import re
import unicodedata
from functools import lru_cache
from typing import Any, Literal, Sequence

from service.text import is_cjk_wide

CONTINUATION_MARK = "·"
TokenizerKind = Literal["byte-level", "sentencepiece", "wordpiece", "plain"]

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable character standing for each byte."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes)}


def tokenizer_kind(tokenizer: Any) -> TokenizerKind:
    """How the tokenizer marks spaces and bytes in its vocabulary (remembered per tokenizer: Gemma's is 33 MB)."""
    try:
        return _KIND_CACHE[tokenizer]
    except (KeyError, TypeError):
        pass
    kind = _tokenizer_kind_uncached(tokenizer)
    try:
        _KIND_CACHE[tokenizer] = kind
    except TypeError:  # not weak-referenceable: recompute next time
        pass
    return kind


_KIND_CACHE: "weakref.WeakKeyDictionary[Any, TokenizerKind]" = weakref.WeakKeyDictionary()


def _component_state(component: Any) -> str:
    """The JSON description of one tokenizers component (decoder, pre-tokenizer), without serialising the vocabulary."""
    if component is None:
        return "null"
    state = component.__getstate__()
    return state.decode("utf-8") if isinstance(state, bytes) else json.dumps(state)


def _tokenizer_kind_uncached(tokenizer: Any) -> TokenizerKind:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        described = _component_state(backend.decoder) + _component_state(backend.pre_tokenizer)
        if '"ByteLevel"' in described:
            return "byte-level"
        if '"WordPiece"' in described:
            return "wordpiece"
        if '"Metaspace"' in described or "\u2581" in described or "▁" in described or '"ByteFallback"' in described:
            return "sentencepiece"
        if type(backend.model).__name__ == "WordPiece":
            return "wordpiece"
        return "plain"
    if hasattr(tokenizer, "byte_decoder"):
        return "byte-level"
    if hasattr(tokenizer, "sp_model") or hasattr(tokenizer, "spm_source"):
        return "sentencepiece"
    if hasattr(tokenizer, "wordpiece_tokenizer"):
        return "wordpiece"
    return "plain"


def _piece_bytes(piece: str, kind: TokenizerKind) -> bytes:
    """The bytes one vocabulary piece contributes to the decoded text."""
    if kind == "byte-level":
        table = _byte_decoder()
        if all(char in table for char in piece):
            return bytes(table[char] for char in piece)
        return piece.encode("utf-8")
    fallback = _BYTE_FALLBACK.match(piece)
    if fallback:
        return bytes([int(fallback.group(1), 16)])
    if kind == "sentencepiece":
        return piece.replace("\u2581", " ").encode("utf-8")
    return piece.encode("utf-8")


def _utf8_length(lead: int) -> int:
    """Bytes in the UTF-8 sequence starting with `lead` (0 when `lead` cannot start one)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def _visible(text: str) -> str:
    """Make whitespace readable in a token label."""
    if text and text.strip(" ") == "":
        return "␣" * len(text)
    return text.replace("\r", "").replace("\n", "↵").replace("\t", "⇥")


def _hex(data: bytes) -> str:
    return "".join(f"<0x{byte:02X}>" for byte in data)


def decode_pieces(pieces: Sequence[bytes]) -> list[str]:
    """Display strings for a sequence of byte pieces, assembling characters split across pieces.

    >>> decode_pieces([b"\\xe6\\x9c", b"\\xba"])
    ['机', '·']
    """
    labels = [""] * len(pieces)
    continuation = [False] * len(pieces)
    # Flatten to (byte, piece index) and decode one UTF-8 sequence at a time.
    stream = [(byte, index) for index, piece in enumerate(pieces) for byte in piece]
    position = 0
    while position < len(stream):
        lead, owner = stream[position]
        length = _utf8_length(lead)
        chunk = bytes(byte for byte, _ in stream[position : position + length]) if length else b""
        character = None
        if length and len(chunk) == length:
            try:
                character = chunk.decode("utf-8")
            except UnicodeDecodeError:
                character = None
        if character is None:
            labels[owner] += _hex(bytes([lead]))
            position += 1
            continue
        labels[owner] += character
        for _, other in stream[position + 1 : position + length]:
            if other != owner:
                continuation[other] = True
        position += length
    out = []
    for label, is_continuation in zip(labels, continuation):
        shown = _visible(label)
        if is_continuation and not shown.startswith(CONTINUATION_MARK):
            shown = CONTINUATION_MARK + shown
        out.append(shown)
    return out


def display_tokens(tokenizer: Any, token_ids: Sequence[int]) -> tuple[list[str], list[bool]]:
    """Readable display strings and special-token flags for `token_ids` (one entry per id)."""
    ids = [int(token_id) for token_id in token_ids]
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    pieces = tokenizer.convert_ids_to_tokens(ids)
    kind = tokenizer_kind(tokenizer)
    special = [token_id in special_ids for token_id in ids]
    labels: list[str] = [""] * len(ids)

    # Decode each run of ordinary tokens together so characters split across tokens are assembled.
    run: list[int] = []

    def flush() -> None:
        if not run:
            return
        raw = [pieces[index] or "" for index in run]
        if kind == "wordpiece":
            texts = _wordpiece_texts(raw, first_in_run=True)
            decoded = [_visible(text) for text in texts]
        else:
            decoded = decode_pieces([_piece_bytes(piece, kind) for piece in raw])
        for index, label in zip(run, decoded):
            labels[index] = label
        run.clear()

    for index, is_special in enumerate(special):
        if is_special:
            flush()
            labels[index] = pieces[index] or f"<id {ids[index]}>"
        else:
            run.append(index)
    flush()
    return labels, special


def _wordpiece_texts(pieces: list[str], first_in_run: bool) -> list[str]:
    """WordPiece: '##x' continues the previous word; other pieces start a word and get a space,
    except CJK characters and punctuation, which BERT splits off text written without spaces."""
    texts = []
    for position, piece in enumerate(pieces):
        if piece.startswith("##"):
            texts.append(piece[2:])
        elif (position == 0 and first_in_run) or _is_unspaced(piece) or is_cjk_wide(pieces[position - 1][-1:]):
            texts.append(piece)
        else:
            texts.append(" " + piece)
    return texts


def _is_unspaced(piece: str) -> bool:
    """True for a CJK character or a punctuation mark (no space before it when shown)."""
    if len(piece) != 1:
        return False
    return is_cjk_wide(piece) or unicodedata.category(piece).startswith("P")
