"""ModelService: the public Python API that runs the four tasks on a profile's models and returns AttentionResults."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from service import limits, validation
from service.errors import AtlasError, ModelLoadError, UnsupportedError
from service.loading import HubModelSpec, LoadedModel, Progress, load_hub_config, load_hub_model, prepare_model
from service.loading import resolve_device
from service.result import AttentionResult
from service.specialists import GenerationSettings, detect_direction, fewshot_result, json_ready, run_generation
from service.specialists import run_qa, run_sentiment, run_translation

EMBEDDED_MODEL_NAME = "google/gemma-3-270m"
FEWSHOT_PROFILES = ("embedded", "tiny-fewshot")
_STOP_TIMEOUT_S = 60.0


class ModelService:
    """Runs generation, QA, translation and sentiment on one profile's models and captures their attention.

    profile: "embedded" (Gemma-3-270M, few-shot, offline), "hub" (task specialists from the Hub),
             "tiny" (tiny random specialists, tests) or "tiny-fewshot" (tiny random Gemma-3, few-shot path).
    device: "cpu" (default, float32), "cuda" (bfloat16; error if no GPU) or "auto".
    max_attention_tokens: longest token sequence whose attention a result keeps (longer inputs are truncated
             for encoders; for decoders the last N positions are kept), with a notice in the result.
    hub_config: optional TOML overriding service/hub_models.toml per task (also $ATLAS_HUB_CONFIG).
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
        self._hub_specs: dict[str, HubModelSpec] = load_hub_config(hub_config) if profile == "hub" else {}
        self._models: dict[str, LoadedModel] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()

    # --- tasks --------------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str,
        max_new_tokens: int = limits.DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        min_new_tokens: int = 0,
    ) -> AttentionResult:
        """Continue `prompt`; prediction {"text": continuation}. temperature 0 = greedy; same seed → same text."""
        validation.check_text(prompt, "prompt")
        settings = self._settings(max_new_tokens, temperature, top_k, top_p, seed, min_new_tokens)
        loaded = self._get(self._key("generation"))
        with loaded.lock, _inference_mode():
            result = run_generation(loaded, prompt, settings, self.max_attention_tokens)
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
    ) -> Iterator[str | AttentionResult]:
        """Yield the continuation so far (str) after each new token, then the final AttentionResult.

        Input is checked at call time. Setting `finish_early` ends generation within one token and still yields the
        AttentionResult for the text so far (a Stop button). Closing the iterator early stops generation within one
        token, yields nothing more, and releases the model before `close()` returns (a closed tab).
        """
        validation.check_text(prompt, "prompt")
        settings = self._settings(max_new_tokens, temperature, top_k, top_p, seed, min_new_tokens)
        return self._stream(prompt, settings, finish_early)

    def answer(self, context: str, question: str) -> AttentionResult:
        """Answer `question` from `context`; prediction {"answer", "start", "end", "score"},
        with context[start:end] == answer."""
        validation.check_text(context, "context", limits.MAX_CONTEXT_CHARS)
        validation.check_text(question, "question", limits.MAX_INPUT_CHARS)
        loaded = self._get(self._key("qa"))
        with loaded.lock, _inference_mode():
            if self.profile in FEWSHOT_PROFILES:
                from service.fewshot import answer_fewshot

                outcome = answer_fewshot(loaded.model, loaded.tokenizer, context, question)
                result = fewshot_result(loaded, "qa", outcome, self.max_attention_tokens)
                result.prediction = _locate_answer(result.prediction, context)
                return result
            return run_qa(loaded, context, question, self.max_attention_tokens)

    def translate(self, text: str, direction: str = "auto") -> AttentionResult:
        """Translate between English and Chinese; prediction {"translation", "direction"}.

        direction: "auto" (Chinese if CJK characters dominate, → zh-en; else en-zh), "en-zh" or "zh-en".
        """
        validation.check_text(text, "text")
        direction = validation.check_direction(direction)
        if direction == "auto":
            direction = detect_direction(text)
        loaded = self._get(self._key("translation", direction))
        with loaded.lock, _inference_mode():
            if self.profile in FEWSHOT_PROFILES:
                from service.fewshot import translate_fewshot

                outcome = translate_fewshot(loaded.model, loaded.tokenizer, text, direction)
                result = fewshot_result(loaded, "translation", outcome, self.max_attention_tokens)
                result.prediction.setdefault("direction", direction)
                return result
            prefix = self._hub_specs[f"translation.{direction}"].source_prefix if self.profile == "hub" else ""
            return run_translation(loaded, text, direction, self.max_attention_tokens, source_prefix=prefix)

    def classify(self, text: str) -> AttentionResult:
        """Sentiment of `text`; prediction {"label": "positive" | "negative", "score": float in [0, 1], ...}."""
        validation.check_text(text, "text")
        loaded = self._get(self._key("sentiment"))
        with loaded.lock, _inference_mode():
            if self.profile in FEWSHOT_PROFILES:
                from service.fewshot import classify_fewshot

                outcome = classify_fewshot(loaded.model, loaded.tokenizer, text)
                return fewshot_result(loaded, "sentiment", outcome, self.max_attention_tokens)
            return run_sentiment(loaded, text, self.max_attention_tokens)

    # --- models -------------------------------------------------------------------------------------
    def load(self, task: str, progress: Progress | None = None) -> None:
        """Load the model(s) of `task` now (otherwise they load on first use). progress(fraction, message)."""
        task = validation.check_task(task)
        for key in self._keys(task):
            self._get(key, progress)

    def model_name(self, task: str) -> str:
        """The model that runs `task` in this profile (both directions' models for translation)."""
        task = validation.check_task(task)
        return " + ".join(dict.fromkeys(self._name_of(key) for key in self._keys(task)))

    def explain(self, text: str, layer: int, head: int, position: int, model: str = "default") -> Any:
        """Explain one attention head's computation at one position (see service/explain.py)."""
        from service.explain import explain_attention

        validation.check_text(text, "text")
        choice = validation.check_choice(model, "model to explain", tuple(self.explain_models()))
        if choice == "minilm":
            explained_model, tokenizer, name, lock = self._minilm()
        else:
            loaded = self._get(self._key("generation"))
            explained_model, tokenizer, name, lock = loaded.model, loaded.tokenizer, loaded.name, loaded.lock
        with lock, _inference_mode():
            return explain_attention(explained_model, tokenizer, text, layer, head, position, model_name=name)

    def explain_models(self) -> list[str]:
        """Models the Explain tab can show: "default" (this profile's generation model), plus "minilm" (embedded)."""
        return ["default", "minilm"] if self.profile == "embedded" else ["default"]

    def explain_shape(self, model: str = "default") -> tuple[int, int] | None:
        """(layers, heads) of the model Explain would use, when known without loading it: from the loaded model, or
        from a config.json already on disk (the converted Gemma cache, the MiniLM package). None otherwise."""
        choice = validation.check_choice(model, "model to explain", tuple(self.explain_models()))
        key = "minilm" if choice == "minilm" else self._key("generation")
        with self._registry_lock:
            loaded = self._models.get(key)
        if loaded is not None:
            config = loaded.model.config
            return int(config.num_hidden_layers), int(config.num_attention_heads)
        config_path = _config_on_disk(key)
        if config_path is None:
            return None
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            return int(config["num_hidden_layers"]), int(config["num_attention_heads"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # --- internals ----------------------------------------------------------------------------------
    def _settings(self, max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any, seed: Any,
                  min_new_tokens: Any) -> GenerationSettings:
        checked = validation.check_sampling(max_new_tokens, temperature, top_k, top_p, seed)
        minimum = int(validation.check_number(min_new_tokens, "min_new_tokens", 0, checked[0], integer=True))
        return GenerationSettings(*checked, min_new_tokens=minimum)

    def _key(self, task: str, direction: str | None = None) -> str:
        if self.profile == "embedded":
            return "embedded"
        if self.profile == "tiny-fewshot":
            return "fewshot"
        return f"translation.{direction}" if task == "translation" else task

    def _keys(self, task: str) -> list[str]:
        if task == "translation":
            return list(dict.fromkeys(self._key(task, direction) for direction in ("en-zh", "zh-en")))
        return [self._key(task)]

    def _name_of(self, key: str) -> str:
        from service.tiny import TINY_NAMES

        if key == "embedded":
            return EMBEDDED_MODEL_NAME
        if self.profile == "hub":
            return self._hub_spec(key).model
        return TINY_NAMES[key]

    def _hub_spec(self, key: str) -> HubModelSpec:
        spec = self._hub_specs.get(key)
        if spec is None:
            raise ModelLoadError(
                key, "the hub model config has no entry for it",
                "Add a [" + key + "] section with model and revision to service/hub_models.toml",
            )
        return spec

    def _get(self, key: str, progress: Progress | None = None) -> LoadedModel:
        """The loaded model for `key`, loading it once (other keys keep loading/serving in parallel)."""
        with self._registry_lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._load_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._registry_lock:
                if key in self._models:
                    return self._models[key]
            loaded = self._load(key, progress)
            with self._registry_lock:
                self._models[key] = loaded
            return loaded

    def _load(self, key: str, progress: Progress | None) -> LoadedModel:
        if self.profile in ("tiny", "tiny-fewshot"):
            from service.tiny import load_tiny

            if progress:
                progress(0.0, f"Building {self._name_of(key)}")
            loaded = load_tiny(key, self.device)
            if progress:
                progress(1.0, f"Built {self._name_of(key)}")
            return loaded
        if self.profile == "embedded":
            from service.embedded import load_embedded_gemma

            try:
                model, tokenizer = load_embedded_gemma(device=self.device, progress=progress)
            except AtlasError:
                raise
            except (OSError, ImportError, ValueError, RuntimeError) as error:
                raise ModelLoadError(
                    EMBEDDED_MODEL_NAME, " ".join(str(error).split())[:300] or type(error).__name__,
                    "Reinstall the requirements (pip install -r requirements.txt) or use --profile hub",
                ) from error
            return LoadedModel(prepare_model(model, self.device), tokenizer, EMBEDDED_MODEL_NAME, "decoder", self.device)
        return load_hub_model(self._hub_spec(key), self.device, progress)

    def _minilm(self) -> tuple[Any, Any, str, threading.Lock]:
        with self._registry_lock:
            cached = self._models.get("minilm")
        if cached is None:
            from service.minilm import load_minilm

            loaded_minilm = load_minilm(device=self.device)
            if isinstance(loaded_minilm, LoadedModel):
                cached = loaded_minilm
            else:
                model, tokenizer = loaded_minilm[0], loaded_minilm[1]
                cached = LoadedModel(model, tokenizer, "sentence-transformers/all-MiniLM-L6-v2", "encoder", "cpu")
            with self._registry_lock:
                cached = self._models.setdefault("minilm", cached)
        return cached.model, cached.tokenizer, cached.name, cached.lock

    def _stream(self, prompt: str, settings: GenerationSettings,
                finish_early: threading.Event | None = None) -> Iterator[str | AttentionResult]:
        loaded = self._get(self._key("generation"))
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                with loaded.lock:
                    if stop.is_set():
                        events.put(("done", None))
                        return
                    with _inference_mode():
                        result = run_generation(
                            loaded, prompt, settings, self.max_attention_tokens,
                            on_token=lambda ids: events.put(("tokens", ids)), stop_event=stop,
                            finish_event=finish_early,
                        )
                events.put(("done", result))
            except BaseException as error:  # handed to the consumer thread, which re-raises it
                events.put(("error", error))

        worker = threading.Thread(target=work, name="atlas-generate", daemon=True)
        worker.start()
        try:
            while True:
                kind, payload = events.get()
                while kind == "tokens" and not events.empty():  # skip stale partial texts
                    kind, payload = events.get()
                if kind == "tokens":
                    text = loaded.tokenizer.decode(payload, skip_special_tokens=True)
                    yield text.rstrip("\ufffd")  # a character whose last bytes are still to come
                elif kind == "error":
                    raise payload
                else:
                    if payload is not None:
                        yield payload
                    return
        finally:
            stop.set()
            worker.join(timeout=_STOP_TIMEOUT_S)


def _config_on_disk(key: str) -> Path | None:
    """config.json of an embedded model that is already on disk (nothing is converted or downloaded to find it)."""
    try:
        if key == "embedded":
            from service.embedded import converted_model_dir

            path = converted_model_dir() / "config.json"
        elif key == "minilm":
            from service.minilm import minilm_dir

            path = minilm_dir() / "config.json"
        else:
            return None
    except (AtlasError, ImportError, OSError):
        return None
    return path if path.is_file() else None


def _inference_mode() -> Any:
    import torch

    return torch.inference_mode()


def _locate_answer(prediction: dict[str, Any], context: str) -> dict[str, Any]:
    """Ensure a QA prediction has character offsets into the context (-1 when the answer is not a span of it)."""
    prediction = json_ready(prediction)
    answer = prediction.get("answer", "")
    if "start" not in prediction or "end" not in prediction:
        start = context.find(answer) if answer else -1
        prediction["start"] = start
        prediction["end"] = start + len(answer) if start >= 0 else -1
    prediction.setdefault("score", 0.0)
    return prediction


__all__ = ["ModelService"]
