"""ModelService: the public Python API. It checks every input, then hands the task to its profile's backend."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterator

from service import limits, validation
from service.errors import InvalidInputError, UnsupportedError
from service.attention.tokens import display_tokens
from service.models.loading import Progress, resolve_device
from service.probes.head_roles import HeadRole
from service.probes.logit_lens import MAX_LENS_POSITIONS, LogitLens
from service.result import AttentionResult
from service.tasks.generation import GenerationSettings
from service.tasks.steps import DEFAULT_TOP_K, MAX_TOP_K
from service.text import detect_direction, wrong_language_notice
from service.threads import releases_thread_team

if TYPE_CHECKING:  # service.lesson imports torch: only on first use
    from service.lesson import LessonData

# task → (method, (required fields, optional fields)) for run_task
_TASK_FIELDS: dict[str, tuple[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "generation": ("generate", (("prompt",), ("max_new_tokens", "temperature", "top_k", "top_p", "seed",
                                               "min_new_tokens", "candidates"))),
    "qa": ("answer", (("context", "question"), ())),
    "translation": ("translate", (("text",), ("direction",))),
    "sentiment": ("classify", (("text",), ())),
}


class ModelService:
    """Runs generation, QA, translation and sentiment on one profile's models and captures their attention.

    profile: "embedded" (Gemma-3-270M, few-shot, offline), "hub" (task specialists from the Hub),
             "tiny" (tiny random specialists, tests) or "tiny-fewshot" (tiny random Gemma-3, few-shot path).
    device: "cpu" (default, float32), "cuda" (bfloat16; error if no GPU) or "auto".
    max_attention_tokens: longest token sequence whose attention a result keeps (longer inputs are truncated
             for encoders; for decoders the last N positions are kept), with a notice in the result.
    hub_config: optional TOML overriding service/models/hub_models.toml per task (also $ATLAS_HUB_CONFIG).
    Models load lazily on first use (or with `load`); every method is safe to call from several threads.
    """

    def __init__(
        self,
        profile: str = "embedded",
        device: str = "cpu",
        max_attention_tokens: int = limits.DEFAULT_MAX_ATTENTION_TOKENS,
        hub_config: str | None = None,
    ) -> None:
        self.profile = validation.check_choice(profile, "profile", limits.PROFILES)
        self.device = resolve_device(device)
        self.max_attention_tokens = int(
            validation.check_number(
                max_attention_tokens, "max_attention_tokens", *limits.MAX_ATTENTION_TOKENS_RANGE, integer=True
            )
        )
        from service.backends import make_backend  # the task code imports torch: not before a service is made

        self.backend = make_backend(self.profile, self.device, self.max_attention_tokens, hub_config)

    # --- tasks --------------------------------------------------------------------------------------
    @releases_thread_team
    def generate(
        self,
        prompt: str,
        max_new_tokens: int = limits.DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        min_new_tokens: int = 0,
        candidates: int = DEFAULT_TOP_K,
    ) -> AttentionResult:
        """Continue `prompt`; prediction {"text": continuation}. temperature 0 = greedy; same seed → same text.
        result.generation_steps: per token, the top `candidates` next tokens the model weighed (0 = none)."""
        validation.check_text(prompt, "prompt")
        settings = self._settings(max_new_tokens, temperature, top_k, top_p, seed, min_new_tokens, candidates)
        result = self.backend.generate(prompt, settings)
        assert result is not None  # only a stop request yields None
        return result

    def stream_generate(
        self,
        prompt: str,
        max_new_tokens: int = limits.DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        min_new_tokens: int = 0,
        finish_early: threading.Event | None = None,
        candidates: int = DEFAULT_TOP_K,
    ) -> Iterator[str | AttentionResult]:
        """Yield the continuation so far (str) after each new token, then the final AttentionResult.

        Input is checked at call time. Setting `finish_early` ends generation within one token and still yields the
        AttentionResult for the text so far (a Stop button). Closing the iterator early stops generation within one
        token, yields nothing more, and releases the model before `close()` returns (a closed tab).
        """
        validation.check_text(prompt, "prompt")
        settings = self._settings(max_new_tokens, temperature, top_k, top_p, seed, min_new_tokens, candidates)
        return self.backend.stream(prompt, settings, finish_early)

    @releases_thread_team
    def answer(self, context: str, question: str, zero_shot: bool = False) -> AttentionResult:
        """Answer `question` from `context`; prediction {"answer", "start", "end", "score"},
        with context[start:end] == answer. zero_shot: leave the demonstrations out (few-shot profiles)."""
        validation.check_text(context, "context", limits.MAX_CONTEXT_CHARS)
        validation.check_text(question, "question", limits.MAX_INPUT_CHARS)
        return self.backend.answer(context, question, zero_shot=self._zero_shot(zero_shot))

    @releases_thread_team
    def translate(self, text: str, direction: str = "auto", zero_shot: bool = False) -> AttentionResult:
        """Translate between English and Chinese; prediction {"translation", "direction"}.

        direction: "auto" (service.text.detect_direction: zh-en when Han characters are at least as many as Latin
        words, else en-zh), "en-zh" or "zh-en". A translation not in its target language (or empty) gets a notice
        (service.text.wrong_language_notice).
        """
        validation.check_text(text, "text")
        direction = validation.check_direction(direction)
        direction = detect_direction(text) if direction == "auto" else direction
        result = self.backend.translate(text, direction, zero_shot=self._zero_shot(zero_shot))
        notice = wrong_language_notice(str(result.prediction.get("translation", "")),
                                       str(result.prediction.get("direction", direction)))
        if notice is not None:
            result.notices.append(notice)
        return result

    @releases_thread_team
    def classify(self, text: str, zero_shot: bool = False) -> AttentionResult:
        """Sentiment of `text`; prediction {"label": "positive" | "negative", "score": float in [0, 1], ...}."""
        validation.check_text(text, "text")
        return self.backend.classify(text, zero_shot=self._zero_shot(zero_shot))

    def run_task(self, task: str, inputs: dict[str, Any], zero_shot: bool = False) -> AttentionResult:
        """Run `task` ("generation", "qa", "translation", "sentiment") on `inputs`, the task method's keyword
        arguments (e.g. {"context": ..., "question": ...}); unknown or missing fields are refused by name."""
        task = validation.check_task(task)
        method, fields = _TASK_FIELDS[task]
        inputs = validation.check_fields(inputs, fields[0], fields[1], task)
        if zero_shot:
            inputs["zero_shot"] = True
        return getattr(self, method)(**inputs)

    @releases_thread_team
    def compare_shots(self, task: str, inputs: dict[str, Any]) -> tuple[AttentionResult, AttentionResult]:
        """(few-shot result, zero-shot result) of the same input: the demonstrations' effect on real numbers.
        Few-shot profiles only; one more model call than the task alone."""
        if validation.check_task(task) == "generation":
            raise UnsupportedError("Generation has no demonstrations to leave out. Compare qa, translation or "
                                   "sentiment.")
        self._zero_shot(True)
        return self.run_task(task, inputs), self.run_task(task, inputs, zero_shot=True)

    @releases_thread_team
    def explain(self, text: str, layer: int, head: int, position: int, model: str = "default") -> Any:
        """Explain one attention head's computation at one position (see service/explain/)."""
        from service.explain import explain_attention

        validation.check_text(text, "text")
        loaded = self.backend.explain_model(self._explain_choice(model))
        with loaded.turn():
            return explain_attention(loaded.model, loaded.tokenizer, text, layer, head, position,
                                     model_name=loaded.name)

    # --- looking inside the generation model ------------------------------------------------------
    @releases_thread_team
    def logit_lens(self, text: str | AttentionResult, start: int | None = None, end: int | None = None,
                   k: int = 3) -> LogitLens:
        """What the generation model would predict after each layer, for positions start..end-1 of `text` (a string,
        or a kept decoder result of this profile's generation model); by default the last MAX_LENS_POSITIONS
        positions. See service/probes/logit_lens.py."""
        ids, tokens = self._lens_tokens(text)
        end = len(ids) if end is None else end
        start = max(0, int(end) - MAX_LENS_POSITIONS) if start is None and isinstance(end, int) else start
        start = validation.check_index(start, "start", len(ids))
        end = int(validation.check_number(end, "end", start + 1, len(ids), integer=True))
        k = int(validation.check_number(k, "k", 1, MAX_TOP_K, integer=True))
        return self.backend.logit_lens(ids, tokens, start, end, k)

    @releases_thread_team
    def lesson(self, text: str) -> LessonData:
        """The numbers behind the Lesson tab for one short sentence (at most MAX_LESSON_TOKENS tokens of the generation
        model): three tokenizations, embeddings and their neighbours, each sublayer's change of the residual stream,
        the next-token logits, and the generation model's and the profile's encoder's attention (service/lesson/)."""
        from service.lesson import build_lesson

        validation.check_text(text, "text")
        encoder_key, encoder_decoder_key = self.backend.lesson_companions()
        generation = self.backend.model(self.backend.generation_key)
        encoder = self.backend.model(encoder_key) if encoder_key else None
        encoder_decoder = self.backend.model_name(encoder_decoder_key) if encoder_decoder_key else None
        return build_lesson(text, generation, encoder, encoder_decoder)

    @releases_thread_team
    def head_roles(self) -> list[HeadRole]:
        """Every head of the generation model with a role and its probe scores (computed once, then kept)."""
        return self.backend.head_roles()

    # --- models -------------------------------------------------------------------------------------
    @releases_thread_team
    def load(self, task: str, progress: Progress | None = None) -> None:
        """Load the model(s) of `task` now (otherwise they load on first use). progress(fraction, message)."""
        for key in self.backend.task_keys(validation.check_task(task)):
            self.backend.model(key, progress)

    def model_name(self, task: str) -> str:
        """The model that runs `task` in this profile (both directions' models for translation)."""
        keys = self.backend.task_keys(validation.check_task(task))
        return " + ".join(dict.fromkeys(self.backend.model_name(key) for key in keys))

    def explain_models(self) -> list[str]:
        """Models the Explain tab can show: "default" (this profile's generation model), plus "minilm" (embedded)."""
        return list(self.backend.explain_keys)

    def explain_model_name(self, model: str = "default") -> str:
        """The name of the model behind an Explain choice, e.g. "google/gemma-3-270m" or "gpt2"."""
        return self.backend.model_name(self.backend.explain_keys[self._explain_choice(model)])

    def explain_shape(self, model: str = "default") -> tuple[int, int] | None:
        """(layers, heads) of the model Explain would use, when known without loading it: from the loaded model, or
        from a config.json already on disk (the converted Gemma cache, the MiniLM package). None otherwise."""
        return self.backend.explain_shape(self._explain_choice(model))

    # --- internals ----------------------------------------------------------------------------------
    def _lens_tokens(self, text: str | AttentionResult) -> tuple[list[int], list[str]]:
        if isinstance(text, AttentionResult):
            if text.decoder_token_ids is None or text.model_name != self.model_name("generation"):
                raise UnsupportedError(f"The logit lens reads {self.model_name('generation')}, a decoder; this "
                                       f"result comes from {text.model_name} ({text.architecture}).")
            return text.decoder_token_ids, text.tokens("decoder")
        validation.check_text(text, "text")
        tokenizer = self.backend.model(self.backend.generation_key).tokenizer
        ids = tokenizer(text)["input_ids"]
        return ids, display_tokens(tokenizer, ids)[0]

    def _zero_shot(self, zero_shot: Any) -> bool:
        if not isinstance(zero_shot, bool):
            raise InvalidInputError("zero_shot must be true or false.")
        if zero_shot and not self.backend.supports_zero_shot:
            raise UnsupportedError(
                f"The {self.profile} profile runs fine-tuned task models that read no demonstrations, so there is no "
                "zero-shot version to compare. Use the embedded profile (few-shot prompting) for this."
            )
        return zero_shot

    def _explain_choice(self, model: str) -> str:
        return validation.check_choice(model, "model to explain", tuple(self.explain_models()))

    def _settings(self, max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any, seed: Any,
                  min_new_tokens: Any, candidates: Any = DEFAULT_TOP_K) -> GenerationSettings:
        checked = validation.check_sampling(max_new_tokens, temperature, top_k, top_p, seed)
        minimum = int(validation.check_number(min_new_tokens, "min_new_tokens", 0, checked[0], integer=True))
        top = int(validation.check_number(candidates, "candidates", 0, MAX_TOP_K, integer=True))
        return GenerationSettings(*checked, min_new_tokens=minimum, record_top_k=top)


__all__ = ["ModelService"]
