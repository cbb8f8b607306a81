"""The guided Lesson's numbers, from the real models: LessonData for one short sentence (service/lesson/data.py).

    data.py         the contract: LessonData and Tokenization, every field with its shape
    tokenizers.py   three tokenizers' views of the sentence, piece by piece (and the two built here)
    embeddings.py   cosine similarity of the layer-0 inputs, nearest rows of the embedding table
    residual.py     one hooked forward pass: each sublayer's change of the residual stream, attention, logits
    build.py        build_lesson: the three steps together, each model's lock held while it runs
ModelService.lesson(text) is the public entry point. Importing this package loads no torch (build_lesson does).
"""

from __future__ import annotations

from typing import Any

from service.lesson.data import MAX_LESSON_TOKENS, TOP_NEXT_TOKENS, LessonData, Tokenization


def build_lesson(*args: Any, **kwargs: Any) -> LessonData:
    """service.lesson.build.build_lesson (imported on first call: it needs torch and the family adapters)."""
    from service.lesson.build import build_lesson as build

    return build(*args, **kwargs)


__all__ = ["MAX_LESSON_TOKENS", "TOP_NEXT_TOKENS", "LessonData", "Tokenization", "build_lesson"]
