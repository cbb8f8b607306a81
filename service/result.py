"""The AttentionResult contract: what the model service hands to every view. Read this first.

One dataclass flows from the service (service/) to the demos (demos/) and the views (viz/).
Arrays are numpy float32 with the batch dimension removed; fields that do not apply are None.
Vocabulary follows bertviz: encoder_* / decoder_* / cross_*.

Shapes (L = layers, H = heads, S = encoder tokens, T = decoder tokens):
    encoder_attention  (L, H, S, S)   # (layer, head, query_pos, key_pos), rows sum to 1
    decoder_attention  (L, H, T, T)   # (layer, head, query_pos, key_pos), causal: row i is zero past key i
    cross_attention    (L, H, T, S)   # (layer, head, decoder_pos, encoder_pos)

Which fields are set, by architecture:
    "encoder"          encoder_tokens, encoder_attention                     (BERT, DistilBERT, MiniLM)
    "decoder"          decoder_tokens, decoder_attention                     (GPT-2, Gemma)
    "encoder-decoder"  all five                                              (Marian)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Architecture = Literal["encoder", "decoder", "encoder-decoder"]
TaskName = Literal["generation", "qa", "translation", "sentiment", "explain"]
TokenSide = Literal["encoder", "decoder"]
SegmentRole = Literal["input", "output", "scaffold", "sink"]


@dataclass(frozen=True)
class Segment:
    """A named span of tokens: demonstrations, question, context, query, generated text...

    `start`/`end` are token indices (end exclusive) into `encoder_tokens` or `decoder_tokens` (see `side`).
    role: "input" (the user's own text), "output" (what the model produced), "scaffold" (instruction,
    demonstrations and format words a few-shot prompt wraps around the input) or "sink" (the first token,
    where heads park attention they do not need). Segments of one side never overlap.
    """

    name: str
    start: int
    end: int
    side: TokenSide = "decoder"
    role: SegmentRole = "input"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AttentionResult:
    """A task's answer together with the attention the model computed to produce it."""

    task: TaskName
    model_name: str                      # e.g. "google/gemma-3-270m" or "tiny-gpt2"
    architecture: Architecture
    prediction: dict[str, Any]           # JSON-ready answer, e.g. {"label": "positive", "score": 0.98}
    encoder_tokens: list[str] | None = None   # display strings (readable CJK, markers decoded)
    decoder_tokens: list[str] | None = None
    encoder_attention: np.ndarray | None = None   # (layer, head, query_pos, key_pos)
    decoder_attention: np.ndarray | None = None   # (layer, head, query_pos, key_pos)
    cross_attention: np.ndarray | None = None     # (layer, head, decoder_pos, encoder_pos)
    encoder_special: list[bool] | None = None     # True where the encoder token is a special token
    decoder_special: list[bool] | None = None     # True where the decoder token is a special token
    segments: list[Segment] = field(default_factory=list)
    prompt: str | None = None            # the exact text sent to the model (few-shot prompt included)
    layer_types: list[str] | None = None  # per layer of the self-attention: "full" or "sliding:<window>"
    num_key_value_heads: int | None = None  # < heads for grouped-query attention (Gemma), else None
    timings: dict[str, float] = field(default_factory=dict)  # seconds, e.g. {"model": 0.8, "capture": 0.1}
    notices: list[str] = field(default_factory=list)  # e.g. "Input truncated to 256 tokens for attention."
    encoder_token_ids: list[int] | None = None   # the ids behind encoder_tokens / decoder_tokens (same length)
    decoder_token_ids: list[int] | None = None
    # generation only: per generated token {"token", "token_id", "p", "rank", "candidates": [{"token", "p"}], ...}
    # (service/tasks/steps.py), recorded while generating
    generation_steps: list[dict[str, Any]] | None = None
    # few-shot tasks: the demonstrations chosen for this input, in prompt order (most similar last), e.g.
    # {"segment": "demonstration 1", "similarity": 0.61, "pool": "qa.en", "index": 12}
    # (service/tasks/demonstrations.py); None where a task shows no chosen demonstrations
    demonstrations: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        _check_pair("encoder", self.encoder_tokens, self.encoder_attention)
        _check_pair("decoder", self.decoder_tokens, self.decoder_attention)
        if self.cross_attention is not None:
            if self.encoder_tokens is None or self.decoder_tokens is None:
                raise ValueError("cross_attention needs both encoder_tokens and decoder_tokens")
            _, _, targets, sources = self.cross_attention.shape
            if (targets, sources) != (len(self.decoder_tokens), len(self.encoder_tokens)):
                raise ValueError(
                    f"cross_attention is {targets}×{sources} but there are "
                    f"{len(self.decoder_tokens)} decoder tokens and {len(self.encoder_tokens)} encoder tokens"
                )

    # --- convenience views used by demos and viz -------------------------------------------------
    @property
    def main_side(self) -> TokenSide:
        """The side whose self-attention a view shows by default: decoder if present, else encoder."""
        return "decoder" if self.decoder_attention is not None else "encoder"

    def tokens(self, side: TokenSide | None = None) -> list[str]:
        side = side or self.main_side
        tokens = self.decoder_tokens if side == "decoder" else self.encoder_tokens
        if tokens is None:
            raise ValueError(f"this {self.architecture} result has no {side} tokens")
        return tokens

    def self_attention(self, side: TokenSide | None = None) -> np.ndarray:
        """(layer, head, query_pos, key_pos) self-attention of one side."""
        side = side or self.main_side
        attention = self.decoder_attention if side == "decoder" else self.encoder_attention
        if attention is None:
            raise ValueError(f"this {self.architecture} result has no {side} self-attention")
        return attention

    def special(self, side: TokenSide | None = None) -> list[bool]:
        side = side or self.main_side
        mask = self.decoder_special if side == "decoder" else self.encoder_special
        return mask if mask is not None else [False] * len(self.tokens(side))

    def is_causal(self, side: TokenSide | None = None) -> bool:
        """Decoder self-attention is causal (a token never sees later tokens); encoder is bidirectional."""
        return (side or self.main_side) == "decoder"

    @property
    def num_layers(self) -> int:
        return int(self.self_attention().shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.self_attention().shape[1])

    def to_json(self, include_attention: bool = False) -> dict[str, Any]:
        """JSON-ready summary (attention arrays only when asked: they are large)."""
        out: dict[str, Any] = {
            "task": self.task,
            "model_name": self.model_name,
            "architecture": self.architecture,
            "prediction": self.prediction,
            "encoder_tokens": self.encoder_tokens,
            "decoder_tokens": self.decoder_tokens,
            "segments": [segment.to_dict() for segment in self.segments],
            "prompt": self.prompt,
            "layer_types": self.layer_types,
            "timings": self.timings,
            "notices": self.notices,
            "generation_steps": self.generation_steps,
            "demonstrations": self.demonstrations,
        }
        if include_attention:
            for name in ("encoder_attention", "decoder_attention", "cross_attention"):
                array = getattr(self, name)
                out[name] = None if array is None else array.tolist()
        return out


def _check_pair(side: str, tokens: list[str] | None, attention: np.ndarray | None) -> None:
    if attention is None:
        return
    if tokens is None:
        raise ValueError(f"{side}_attention is set but {side}_tokens is None")
    if attention.ndim != 4:
        raise ValueError(f"{side}_attention must be (layer, head, query, key), got shape {attention.shape}")
    _, _, queries, keys = attention.shape
    if queries != keys or queries != len(tokens):
        raise ValueError(
            f"{side}_attention has {queries}×{keys} positions but there are {len(tokens)} {side} tokens"
        )
