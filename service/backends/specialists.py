"""Task specialists: one model per task (GPT-2, DistilBERT SQuAD, Marian en-zh / zh-en, DistilBERT SST-2)."""

from __future__ import annotations

from service.backends.base import Backend
from service.result import AttentionResult
from service.tasks.qa import run_qa
from service.tasks.sentiment import run_sentiment
from service.tasks.translation import run_translation


class SpecialistBackend(Backend):
    """Each task on its own model, keyed by task ("translation.en-zh" / "translation.zh-en" per direction).

    Fine-tuned specialists read no demonstrations, so `zero_shot` changes nothing (and `supports_zero_shot` is
    False: ModelService refuses a zero- vs few-shot comparison here).
    """

    generation_key = "generation"
    explain_keys = {"default": "generation"}

    def answer(self, context: str, question: str, zero_shot: bool = False) -> AttentionResult:
        return self.run("qa", lambda loaded: run_qa(loaded, context, question, self.max_attention_tokens))

    def translate(self, text: str, direction: str, zero_shot: bool = False) -> AttentionResult:
        key = f"translation.{direction}"
        prefix = self.source.source_prefix(key)
        return self.run(key, lambda loaded: run_translation(
            loaded, text, direction, self.max_attention_tokens, source_prefix=prefix))

    def classify(self, text: str, zero_shot: bool = False) -> AttentionResult:
        return self.run("sentiment", lambda loaded: run_sentiment(loaded, text, self.max_attention_tokens))

    def task_keys(self, task: str) -> list[str]:
        if task == "translation":
            return ["translation.en-zh", "translation.zh-en"]
        return [task]
