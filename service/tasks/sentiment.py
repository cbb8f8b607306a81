"""Sentiment on a sequence classifier (DistilBERT SST-2): positive / negative with its probability.

preprocess (truncate to the budget) → forward (logits and attention in one eager pass) → postprocess (softmax,
label names from the config; segments: the classifier token, role output, and the text).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from service.attention import capture
from service.models.loading import LoadedModel
from service.result import AttentionResult, Segment
from service.tasks.common import as_tensor, build_result, sequence_segments, token_budget


def run_sentiment(loaded: LoadedModel, text: str, max_attention_tokens: int) -> AttentionResult:
    """Positive/negative label of `text` with its probability."""
    tokenizer = loaded.tokenizer
    started = time.perf_counter()
    budget = token_budget(loaded, max_attention_tokens)
    full_length = len(tokenizer(text)["input_ids"])
    encoding = tokenizer(text, truncation=True, max_length=budget)
    ids = encoding["input_ids"]
    inputs = {"input_ids": as_tensor(ids, loaded.device)}  # (1, S)
    inputs["attention_mask"] = inputs["input_ids"].new_ones(inputs["input_ids"].shape)
    outputs, attention = capture.encoder_forward(loaded.model, inputs)  # attention: (layer, head, S, S)
    forwarded_at = time.perf_counter()
    logits = outputs.logits[0].float().cpu().numpy().astype(np.float64)  # (labels,)
    probs = np.exp(logits - logits.max())
    probs = probs / probs.sum()
    labels = [_sentiment_label(loaded.model.config, index, len(probs)) for index in range(len(probs))]
    best = int(np.argmax(probs))
    prediction = {
        "label": labels[best],
        "score": float(probs[best]),
        "scores": {label: float(prob) for label, prob in zip(labels, probs)},
    }
    sequence_ids = encoding.sequence_ids(0) if hasattr(encoding, "sequence_ids") else [0] * len(ids)
    notices = [capture.truncation_notice(len(ids))] if full_length > len(ids) else []
    return build_result(
        loaded, "sentiment", "encoder", prediction, encoder=(ids, attention),
        segments=classifier_token(sequence_segments(sequence_ids, {0: "text"})), notices=notices,
        timings={"model": forwarded_at - started, "capture": time.perf_counter() - forwarded_at},
    )


def _sentiment_label(config: Any, index: int, count: int) -> str:
    name = str(getattr(config, "id2label", {}).get(index, "")).lower()
    if "pos" in name:
        return "positive"
    if "neg" in name:
        return "negative"
    if count == 2:  # LABEL_0 / LABEL_1 of binary sentiment models: 0 = negative
        return "positive" if index == 1 else "negative"
    return name or f"label {index}"


def classifier_token(segments: list[Segment]) -> list[Segment]:
    """The first token ([CLS]) is the one the classification head reads: role output, not a sink."""
    return [Segment("classifier token", 0, 1, "encoder", "output") if segment.role == "sink" else segment
            for segment in segments]
