"""Token display strings for axes, hover text and HTML: visible whitespace, ⟨special⟩ tokens, escaping, unique axis keys,
and line wrapping for captions (Plotly annotations and SVG text never wrap by themselves)."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence

# Tokens that are special whatever the tokenizer says (used when no special mask is given).
KNOWN_SPECIAL_TOKENS = frozenset({
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<s>", "</s>", "<|endoftext|>",
    "<start_of_turn>", "<end_of_turn>", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]",
})

_WHITESPACE_MARKS = {" ": "␣", "\u2581": "␣",  # U+2581 is SentencePiece's space marker
                      "\n": "⏎", "\t": "⇥", "\r": "␍", "\u00a0": "⍽", "\u3000": "␣"}
MAX_LABEL_CHARS = 16


def display_token(token: str, special: bool = False) -> str:
    """One token as a reader should see it (NOT escaped).

    Spaces become "␣", newlines "⏎", tabs "⇥", control characters their Unicode control pictures,
    special tokens "⟨bos⟩" style, the empty token "∅". CJK and other text stay as they are.
    """
    if special or token in KNOWN_SPECIAL_TOKENS:
        inner = token
        if len(inner) >= 2 and inner[0] + inner[-1] in ("<>", "[]"):
            inner = inner[1:-1]
        return f"⟨{inner}⟩" if inner else "⟨special⟩"
    if token == "":
        return "∅"
    shown = []
    for character in token:
        if character in _WHITESPACE_MARKS:
            shown.append(_WHITESPACE_MARKS[character])
        elif ord(character) < 0x20:
            shown.append(chr(0x2400 + ord(character)))  # ␀ … ␟ control pictures
        elif character == "\x7f":
            shown.append("␡")
        elif unicodedata.category(character) in ("Zs", "Zl", "Zp"):
            shown.append("␣")
        elif unicodedata.category(character) == "Cf" and character not in ("\u200d",):  # keep emoji joiner
            shown.append(f"⟨U+{ord(character):04X}⟩")
        else:
            shown.append(character)
    return "".join(shown)


def display_tokens(tokens: Sequence[str], special: Sequence[bool] | None = None) -> list[str]:
    """`display_token` over a sequence; `special[i]` marks special tokens (same length as tokens)."""
    if special is not None and len(special) != len(tokens):
        raise ValueError(f"special mask has {len(special)} entries but there are {len(tokens)} tokens")
    flags = special if special is not None else [False] * len(tokens)
    return [display_token(token, bool(flag)) for token, flag in zip(tokens, flags)]


def shorten(label: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """Cut a display label to at most `max_chars` characters, ending in "…" when cut."""
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


def escape_text(text: str) -> str:
    """Escape & < > so Plotly's HTML-ish text renderer (ticks, hover, titles) shows the characters as text."""
    return html.escape(text, quote=False)


def escape_html(text: str) -> str:
    """Escape for real HTML, attributes included (& < > " ')."""
    return html.escape(text, quote=True)


def plot_labels(tokens: Sequence[str], special: Sequence[bool] | None = None,
                max_chars: int = MAX_LABEL_CHARS) -> list[str]:
    """Display, shortened and escaped labels for Plotly tick text (may repeat: "the" … "the")."""
    return [escape_text(shorten(label, max_chars)) for label in display_tokens(tokens, special)]


def axis_keys(labels: Sequence[str]) -> list[str]:
    """Unique category keys "#3 the" for escaped labels, so Plotly never merges two equal tokens into one row."""
    return [f"#{position} {label}" for position, label in enumerate(labels)]


def wrap_lines(text: str, width: int) -> list[str]:
    """The words of `text` packed greedily into lines of at most `width` characters ([] for blank text).

    A word longer than `width` gets a line of its own rather than being cut. Whitespace runs count as one space.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1 character, got {width}")
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line] if line else lines
