"""The Lesson's contract: LessonData (the numbers behind every static step) and Tokenization (one tokenizer's view).

Shapes: T tokens of the generation model (its <bos> included), D its hidden size, L its layers, H its heads, V its
vocabulary; T_enc, L_enc, H_enc the same for the encoder. Arrays are numpy float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ROUND = 4                   # decimals kept by to_json
MAX_LESSON_TOKENS = 64      # tokens of the generation model (its <bos> included): one short sentence
TOP_NEXT_TOKENS = 20        # entries of top_next_tokens / top_next_ids


@dataclass
class Tokenization:
    """One tokenizer's view of the sentence, specials included (one entry per token in every list).

    name             "Gemma 3 · SentencePiece", "BERT / MiniLM · WordPiece", "byte-level BPE (GPT-2 style)", …
    scheme           "sentencepiece" | "wordpiece" | "byte-level-bpe"
    vocabulary_size  entries of its vocabulary, specials included
    tokens           what each piece holds, readable on its own: complete characters as themselves (CJK too), bytes
                     that are only part of a character as hex ("<e6 9c>"), word-start markers kept ("▁cat",
                     "Ġcat", "##s"); specials by name ("<bos>", "[CLS]")
    raw              the tokenizer's own piece strings ("▁cat", "Ġcat", "æľ", "##s", "<0xE6>")
    ids              vocabulary ids
    special          True for the specials the tokenizer adds (<bos>, [CLS], [SEP]) or that stand in ([UNK])
    source           one honest sentence on where the tokenizer comes from
    decoded          tokenizer.decode(ids, skip_special_tokens=True): the text it gives back
    lossless         decoded == the text (False for an uncased WordPiece, or one whose [UNK]s lose characters)
    """

    name: str
    scheme: str
    vocabulary_size: int
    tokens: list[str]
    raw: list[str]
    ids: list[int]
    special: list[bool]
    source: str
    decoded: str = ""
    lossless: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "scheme": self.scheme, "vocabulary_size": self.vocabulary_size,
                "tokens": self.tokens, "raw": self.raw, "ids": self.ids, "special": self.special,
                "source": self.source, "decoded": self.decoded, "lossless": self.lossless}


@dataclass
class LessonData:
    """Everything the Lesson's static steps show about one short sentence, computed from the real models.

    text                  the sentence
    model_name            the generation model, e.g. "google/gemma-3-270m"
    tokens                (T,) the generation model's display tokens (service/attention/tokens.py), <bos> included
    token_ids             (T,)
    special               (T,) True for its specials (<bos>)
    tokenizations         exactly three, in this order: the generation model's, a WordPiece (the profile's encoder's,
                          or one trained here), a byte-level BPE (the profile's own, or GPT-2's algorithm trained here)
    hidden_size           D
    embedding_cosine      (T, T) cosine similarity of what enters layer 0 (adapter.embed), token by token
    embedding_norms       (T,) ||what enters layer 0|| per token
    neighbours            (T,) lists of 5 (label, cosine): the nearest rows of the embedding table to the token's
                          own row, that row excluded; labels as Tokenization.tokens shows pieces ("▁cat", "<e6 9c>")
    next_token_logits     (V,) the model's logits for the token after the text (last position)
    top_next_tokens       (TOP_NEXT_TOKENS,) labels (as for neighbours) of the highest logits, best first
    top_next_ids          (TOP_NEXT_TOKENS,)
    attention_change      (L,) per layer, mean over tokens of ||h_mid − h_in|| / ||h_in||: how much the attention
                          sublayer changes the residual stream (h_mid: right after attention's residual add, the
                          family's adapter.after_attention_tap)
    ffn_change            (L,) per layer, mean over tokens of ||h_out − h_mid|| / ||h_mid||: the feed-forward sublayer
    residual_norms        (L + 1,) mean ||h|| over tokens entering each layer, then after the last (before the final
                          norm)
    decoder_attention     (L, H, T, T) the generation model's own attention over the text (eager kernel)
    decoder_layer_types   (L,) "full" | "sliding:<window>" (adapter.layer_types)
    encoder_model_name    the profile's encoder (MiniLM in embedded, DistilBERT in hub), or None
    encoder_tokens        (T_enc,) its display tokens ([CLS] … [SEP]), or None
    encoder_attention     (L_enc, H_enc, T_enc, T_enc): bidirectional (every token sees every token), or None
    encoder_decoder_model the profile's translation model when it is an encoder-decoder (Marian), else None
    timings               seconds per part: "tokenizers", "forward", "embeddings", "encoder", "total"
    """

    text: str
    model_name: str
    tokens: list[str]
    token_ids: list[int]
    special: list[bool]
    tokenizations: list[Tokenization]
    hidden_size: int
    embedding_cosine: np.ndarray = field(repr=False)
    embedding_norms: np.ndarray = field(repr=False)
    neighbours: list[list[tuple[str, float]]] = field(repr=False)
    next_token_logits: np.ndarray = field(repr=False)
    top_next_tokens: list[str]
    top_next_ids: list[int]
    attention_change: np.ndarray
    ffn_change: np.ndarray
    residual_norms: np.ndarray
    decoder_attention: np.ndarray = field(repr=False)
    decoder_layer_types: list[str]
    encoder_model_name: str | None
    encoder_tokens: list[str] | None
    encoder_attention: np.ndarray | None = field(repr=False)
    encoder_decoder_model: str | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return int(self.decoder_attention.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.decoder_attention.shape[1])

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: lists and floats rounded to ROUND decimals; the logits and the attention arrays only as their
        shapes ("next_token_logits_shape", "decoder_attention_shape", "encoder_attention_shape")."""
        return {
            "text": self.text, "model_name": self.model_name, "tokens": self.tokens, "token_ids": self.token_ids,
            "special": self.special, "tokenizations": [tokenization.to_json() for tokenization in self.tokenizations],
            "hidden_size": self.hidden_size,
            "embedding_cosine": _rounded(self.embedding_cosine), "embedding_norms": _rounded(self.embedding_norms),
            "neighbours": [[[token, round(float(cosine), ROUND)] for token, cosine in row] for row in self.neighbours],
            "next_token_logits_shape": list(self.next_token_logits.shape),
            "top_next_tokens": self.top_next_tokens, "top_next_ids": self.top_next_ids,
            "top_next_logits": _rounded(self.next_token_logits[self.top_next_ids]),
            "attention_change": _rounded(self.attention_change), "ffn_change": _rounded(self.ffn_change),
            "residual_norms": _rounded(self.residual_norms),
            "decoder_attention_shape": list(self.decoder_attention.shape),
            "decoder_layer_types": self.decoder_layer_types,
            "encoder_model_name": self.encoder_model_name, "encoder_tokens": self.encoder_tokens,
            "encoder_attention_shape": None if self.encoder_attention is None else list(self.encoder_attention.shape),
            "encoder_decoder_model": self.encoder_decoder_model,
            "timings": {part: round(seconds, ROUND) for part, seconds in self.timings.items()},
        }


def _rounded(array: np.ndarray) -> list[Any]:
    return np.round(np.asarray(array, dtype=np.float64), ROUND).tolist()
