"""Demonstrations chosen per input: the k pool items most similar to the query, most similar last.

The pools (service/tasks/pools/*.jsonl, loaded once) hold reviews, (context, question, answer) triples and
English/Chinese pairs, each tagged with its language. An input is matched against the pool of its own language
(service.text.detect_direction decides):

    English   all-MiniLM-L6-v2 sentence embeddings (mean-pooled, L2-normalised; the pool's computed once per
              selector), cosine similarity. Without an encoder (the tiny test profile) English uses n-grams too.
    Chinese   character 1–2-gram TF-IDF cosine: MiniLM's English WordPiece vocabulary barely covers Han
              characters (measured on the dev split: eval/README.md).

Deterministic: the same input gives the same demonstrations in the same order; ties keep pool order.

    selector = DemonstrationSelector()                 # n-grams only; DemonstrationSelector(encoder=...) for MiniLM
    chosen = selector.for_qa(context, question)        # [Chosen(item=(context, question, answer), similarity, ...)]
    answer_fewshot(model, tokenizer, context, question, demonstrations=[c.item for c in chosen])
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from service.text import detect_direction, is_cjk_ideograph

POOL_DIR = Path(__file__).resolve().parent / "pools"
Language = str  # "en" | "zh"

# k per task, chosen on the dev split (eval/README.md): about as many as the fixed prompts had, so a request
# costs what it did.
DEFAULT_K = {"sentiment": 4, "qa": 3, "translation": 3}


@dataclass(frozen=True)
class Chosen:
    """One chosen demonstration: the tuple the task function takes, how similar it is, and where it came from."""

    item: tuple[str, ...]       # sentiment (review, label); qa (context, question, answer); translation (en, zh)
    similarity: float           # cosine similarity to the input, in [-1, 1] (n-grams: [0, 1])
    pool: str                   # e.g. "qa.en", "translation.zh" (the side compared)
    index: int                  # position in that pool

    def to_dict(self, segment: str) -> dict[str, Any]:
        return {"segment": segment, "similarity": round(self.similarity, 4), "pool": self.pool, "index": self.index}


# --- pools ------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def load_pool(task: str) -> tuple[dict[str, Any], ...]:
    """Every item of service/tasks/pools/<task>.jsonl, in file order (read once per process)."""
    path = POOL_DIR / f"{task}.jsonl"
    with path.open(encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


def demonstration_tuple(task: str, item: dict[str, Any]) -> tuple[str, ...]:
    """A pool item as the task function's demonstration tuple."""
    if task == "sentiment":
        return (item["text"], item["label"])
    if task == "qa":
        return (item["context"], item["question"], item["answer"])
    return (item["en"], item["zh"])


def language_of(text: str) -> Language:
    """"zh" when the text is mostly Chinese (as many Han characters as Latin words), else "en"."""
    return "zh" if detect_direction(text) == "zh-en" else "en"


# --- similarity -------------------------------------------------------------------------------------------

def char_ngrams(text: str, sizes: Sequence[int] = (1, 2)) -> dict[str, int]:
    """Counts of character n-grams over the text's letters, digits and Han characters (lower case; each run of
    other characters becomes one space, so n-grams do not jump over punctuation silently)."""
    cleaned = []
    for char in text.lower():
        keep = char.isalnum() or is_cjk_ideograph(char)
        cleaned.append(char if keep else " ")
    normal = " ".join("".join(cleaned).split())
    counts: dict[str, int] = {}
    for size in sizes:
        for start in range(len(normal) - size + 1):
            gram = normal[start:start + size]
            if gram.strip() == gram or size > 2:          # skip 1-grams/2-grams that are or touch a space
                counts[gram] = counts.get(gram, 0) + 1
    counts.pop(" ", None)
    return counts


class NgramIndex:
    """TF-IDF cosine over character n-grams (IDF from the pool's own texts)."""

    def __init__(self, texts: Sequence[str], sizes: Sequence[int] = (1, 2)) -> None:
        self.sizes = tuple(sizes)
        grams = [char_ngrams(text, self.sizes) for text in texts]
        documents = len(texts)
        frequency: dict[str, int] = {}
        for counts in grams:
            for gram in counts:
                frequency[gram] = frequency.get(gram, 0) + 1
        self.idf = {gram: math.log((1 + documents) / (1 + df)) + 1.0 for gram, df in frequency.items()}
        self.unseen_idf = math.log(1 + documents) + 1.0
        self.vectors = [self._unit(counts) for counts in grams]

    def _unit(self, counts: dict[str, int]) -> dict[str, float]:
        vector = {gram: count * self.idf.get(gram, self.unseen_idf) for gram, count in counts.items()}
        norm = math.sqrt(sum(value * value for value in vector.values()))
        return {gram: value / norm for gram, value in vector.items()} if norm else {}

    def similarities(self, text: str) -> list[float]:
        query = self._unit(char_ngrams(text, self.sizes))
        return [sum(weight * vector.get(gram, 0.0) for gram, weight in query.items()) for vector in self.vectors]


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a BERT-style encoder (all-MiniLM-L6-v2).

    `load` returns an object with .model, .tokenizer and .lock (a LoadedModel), called on first use only.
    """

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._loaded: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Any:
        """(texts, hidden) float32 tensor of unit vectors."""
        import torch

        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
        loaded = self._loaded
        with loaded.lock, torch.inference_mode():
            batch = loaded.tokenizer(list(texts), padding=True, truncation=True, max_length=256,
                                     return_tensors="pt").to(loaded.model.device)
            hidden = loaded.model(**batch).last_hidden_state.float()                  # (texts, tokens, hidden)
            mask = batch["attention_mask"].unsqueeze(-1).float()                      # (texts, tokens, 1)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)      # (texts, hidden)
            return torch.nn.functional.normalize(pooled, dim=-1).cpu()                # (texts, hidden)


class EmbeddingIndex:
    """Cosine similarity of sentence embeddings; the pool's embeddings are computed once, on first use."""

    def __init__(self, texts: Sequence[str], encoder: SentenceEncoder) -> None:
        self.texts = list(texts)
        self.encoder = encoder
        self._pool: Any = None
        self._lock = threading.Lock()

    def similarities(self, text: str) -> list[float]:
        with self._lock:
            if self._pool is None:
                self._pool = self.encoder.embed(self.texts)                           # (pool, hidden)
        query = self.encoder.embed([text])                                            # (1, hidden)
        return (self._pool @ query[0]).tolist()                                       # (pool,)


# --- the selector -------------------------------------------------------------------------------------------

class DemonstrationSelector:
    """Nearest-neighbour demonstrations per input, for the three few-shot tasks.

    encoder: loads the English sentence encoder (None: character n-grams for English too, as the tiny profile
    does). k: demonstrations per task (DEFAULT_K). qa_key: what QA similarity compares, "question", "context" or
    "both" (question + context). balanced_sentiment: half the sentiment demonstrations positive, half negative
    (the nearest of each), so the label prior the model sees is even.
    """

    def __init__(self, encoder: Callable[[], Any] | None = None, k: dict[str, int] | None = None,
                 qa_key: str = "question", balanced_sentiment: bool = True,
                 chinese: str = "ngram", ngram_sizes: Sequence[int] = (1, 2)) -> None:
        self.encoder = SentenceEncoder(encoder) if encoder is not None else None
        self.k = {**DEFAULT_K, **(k or {})}
        self.qa_key = qa_key
        self.balanced_sentiment = balanced_sentiment
        self.chinese = chinese
        self.ngram_sizes = tuple(ngram_sizes)
        self._indexes: dict[str, Any] = {}
        self._lock = threading.Lock()

    # --- per task --------------------------------------------------------------------------------------
    def for_sentiment(self, text: str) -> list[Chosen]:
        language = language_of(text)
        k = self.k["sentiment"]
        if not self.balanced_sentiment:
            return self._nearest("sentiment", language, text, k)
        ranked = self._ranked("sentiment", language, text)
        chosen: list[Chosen] = []
        quota = {"positive": (k + 1) // 2, "negative": k // 2}
        for candidate in ranked:
            label = candidate.item[1]
            if quota.get(label, 0) > 0:
                quota[label] -= 1
                chosen.append(candidate)
        return _most_similar_last(chosen[:k])

    def for_qa(self, context: str, question: str) -> list[Chosen]:
        language = language_of(question + context)
        query = {"question": question, "context": context, "both": f"{question} {context}"}[self.qa_key]
        return self._nearest("qa", language, query, self.k["qa"])

    def for_translation(self, text: str, direction: str) -> list[Chosen]:
        source = direction.split("-")[0]
        return self._nearest("translation", source, text, self.k["translation"])

    # --- the ranking -----------------------------------------------------------------------------------
    def _nearest(self, task: str, language: Language, query: str, k: int) -> list[Chosen]:
        return _most_similar_last(self._ranked(task, language, query)[:k])

    def _ranked(self, task: str, language: Language, query: str) -> list[Chosen]:
        """Every item of the (task, language) pool, most similar first; ties keep pool order."""
        items = self._pool_items(task, language)
        if not items:
            return []
        scores = self._index(task, language).similarities(query)
        order = sorted(range(len(items)), key=lambda position: (-scores[position], position))
        return [Chosen(demonstration_tuple(task, items[position][1]), float(scores[position]),
                       f"{task}.{language}", items[position][0]) for position in order]

    def _pool_items(self, task: str, language: Language) -> list[tuple[int, dict[str, Any]]]:
        """(index in the pool file, item) for the items of one language; translation pairs serve both."""
        pool = load_pool(task)
        if task == "translation":
            return list(enumerate(pool))
        return [(index, item) for index, item in enumerate(pool) if item.get("lang") == language]

    def _index(self, task: str, language: Language) -> Any:
        key = f"{task}.{language}"
        with self._lock:
            if key not in self._indexes:
                texts = [self._key_text(task, language, item) for _, item in self._pool_items(task, language)]
                use_encoder = self.encoder is not None and (language == "en" or self.chinese == "minilm")
                self._indexes[key] = (EmbeddingIndex(texts, self.encoder) if use_encoder
                                      else NgramIndex(texts, self.ngram_sizes))
            return self._indexes[key]

    def _key_text(self, task: str, language: Language, item: dict[str, Any]) -> str:
        if task == "sentiment":
            return item["text"]
        if task == "qa":
            return {"question": item["question"], "context": item["context"],
                    "both": f"{item['question']} {item['context']}"}[self.qa_key]
        return item[language]


def _most_similar_last(chosen: list[Chosen]) -> list[Chosen]:
    """Ranked most similar first → prompt order, most similar last (nearest to the query)."""
    return list(reversed(chosen))


def minilm_loader(device: str = "cpu") -> Callable[[], Any]:
    """A loader for SentenceEncoder outside a backend (eval/): the packaged MiniLM with its own lock."""

    def load() -> Any:
        from service.models.loading import LoadedModel
        from service.models.minilm import MINILM_NAME, load_minilm

        model, tokenizer = load_minilm(device)
        return LoadedModel(model, tokenizer, MINILM_NAME, "encoder", device)

    return load
