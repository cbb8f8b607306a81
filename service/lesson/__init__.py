"""The guided Lesson's numbers, from the real models: LessonData for one short sentence (service/lesson/data.py).

    tokenizers.py   three tokenizers' views of the sentence, piece by piece (and the two trained here)
    embeddings.py   cosine similarity of the layer-0 inputs, nearest rows of the embedding table
    residual.py     one hooked forward pass: each sublayer's change of the residual stream, attention, logits
    build.py        build_lesson: the three steps together, each model's lock held while it runs
ModelService.lesson(text) is the public entry point. Imports torch (residual.py, embeddings.py): load it lazily.
"""

from service.lesson.build import MAX_LESSON_TOKENS, TOP_NEXT_TOKENS, build_lesson
from service.lesson.data import LessonData, Tokenization

__all__ = ["MAX_LESSON_TOKENS", "TOP_NEXT_TOKENS", "LessonData", "Tokenization", "build_lesson"]
