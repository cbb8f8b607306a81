"""Synthetic AttentionResults with known patterns (identity, previous-token, uniform) for the viz tests (a helper
module, not tests)."""

from __future__ import annotations

import numpy as np

from service.result import AttentionResult, Segment

PATTERNS = ("identity", "previous", "uniform")


def pattern(name: str, queries: int, keys: int | None = None, causal: bool = True) -> np.ndarray:
    """(query_pos, key_pos) float32 attention with a known shape; rows sum to 1."""
    keys = queries if keys is None else keys
    matrix = np.zeros((queries, keys), dtype=np.float32)
    for query in range(queries):
        if name == "identity":
            matrix[query, min(query, keys - 1)] = 1.0
        elif name == "previous":
            matrix[query, max(query - 1, 0)] = 1.0
        elif name == "uniform":
            visible = query + 1 if causal else keys
            matrix[query, :visible] = 1.0 / visible
        else:
            raise ValueError(name)
    return matrix


def stacked(names: list[list[str]], queries: int, keys: int | None = None, causal: bool = True) -> np.ndarray:
    """(layer, head, query_pos, key_pos) from a layer × head grid of pattern names."""
    return np.stack([np.stack([pattern(n, queries, keys, causal) for n in row]) for row in names]).astype(np.float32)


def decoder_result(tokens: list[str], names: list[list[str]] | None = None, **extra) -> AttentionResult:
    names = names or [["identity", "previous", "uniform"], ["previous", "uniform", "identity"]]
    return AttentionResult(task="generation", model_name="synthetic-decoder", architecture="decoder",
                           prediction={"text": ""}, decoder_tokens=tokens,
                           decoder_attention=stacked(names, len(tokens)), **extra)


def encoder_result(tokens: list[str], names: list[list[str]] | None = None) -> AttentionResult:
    names = names or [["identity", "previous", "uniform"], ["previous", "uniform", "identity"]]
    return AttentionResult(task="sentiment", model_name="synthetic-encoder", architecture="encoder",
                           prediction={"label": "positive", "score": 0.9}, encoder_tokens=tokens,
                           encoder_attention=stacked(names, len(tokens), causal=False),
                           encoder_special=[t in ("[CLS]", "[SEP]") for t in tokens])


def encoder_decoder_result(source: list[str], target: list[str], layers: int = 2, heads: int = 2) -> AttentionResult:
    grid = [["identity"] * heads for _ in range(layers)]
    return AttentionResult(task="translation", model_name="synthetic-marian", architecture="encoder-decoder",
                           prediction={"translation": ""}, encoder_tokens=source, decoder_tokens=target,
                           encoder_attention=stacked(grid, len(source), causal=False),
                           decoder_attention=stacked(grid, len(target)),
                           cross_attention=stacked(grid, len(target), len(source), causal=False),
                           segments=[Segment("source", 0, len(source), "encoder")])


def random_result(architecture: str, tokens: int, layers: int, heads: int, seed: int = 0) -> AttentionResult:
    """Random softmax attention of a real model's size (for the size budget)."""
    rng = np.random.default_rng(seed)

    def softmax(shape: tuple[int, ...], causal: bool) -> np.ndarray:
        logits = rng.normal(size=shape) * 2
        if causal:
            logits = np.where(np.tril(np.ones(shape[-2:], dtype=bool)), logits, -np.inf)
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        return (weights / weights.sum(-1, keepdims=True)).astype(np.float32)

    words = [f"tok{i % 37}" for i in range(tokens)]
    if architecture == "decoder":
        return AttentionResult(task="generation", model_name="random", architecture="decoder", prediction={},
                               decoder_tokens=words, decoder_attention=softmax((layers, heads, tokens, tokens), True))
    if architecture == "encoder":
        return AttentionResult(task="sentiment", model_name="random", architecture="encoder", prediction={},
                               encoder_tokens=words, encoder_attention=softmax((layers, heads, tokens, tokens), False))
    return AttentionResult(task="translation", model_name="random", architecture="encoder-decoder", prediction={},
                           encoder_tokens=words, decoder_tokens=words,
                           encoder_attention=softmax((layers, heads, tokens, tokens), False),
                           decoder_attention=softmax((layers, heads, tokens, tokens), True),
                           cross_attention=softmax((layers, heads, tokens, tokens), False))
