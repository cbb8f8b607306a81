"""What every backend shares: its models, loaded once per key and kept, and generation on its causal LM.

A backend is one profile's way of running the tasks. `ModelService` validates every input, then delegates here;
a backend never validates user input and never asks which profile it is.
"""

from __future__ import annotations

import json
import queue
import threading
from typing import Any, Callable, Iterator

from service.attention.tokens import display_tokens
from service.models.loading import LoadedModel, Progress
from service.models.sources import ModelSource
from service.probes.head_roles import HeadRole, probe_head_roles
from service.probes.logit_lens import LogitLens, logit_lens  # torch and the family adapters load on first call
from service.result import AttentionResult
from service.tasks.generation import GenerationSettings, run_generation


_STOP_TIMEOUT_S = 60.0      # how long closing a stream waits for the generation thread to let go of the model


class Backend:
    """A profile's models (by key, from one source) and its task runners.

    Subclasses set `generation_key` and `explain_keys` ({choice: model key}) and implement answer / translate /
    classify and `task_keys`. Every runner is called with the model's lock held and inside inference mode.
    """

    generation_key: str = "generation"
    explain_keys: dict[str, str] = {"default": "generation"}
    supports_zero_shot: bool = False      # whether the tasks read demonstrations that `zero_shot=True` leaves out

    def __init__(self, source: ModelSource, device: str, max_attention_tokens: int) -> None:
        self.source = source
        self.device = device
        self.max_attention_tokens = max_attention_tokens
        self._models: dict[str, LoadedModel] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self._head_roles: list[HeadRole] | None = None

    # --- tasks --------------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str,
        settings: GenerationSettings,
        on_token: Callable[[list[int]], None] | None = None,
        stop_event: threading.Event | None = None,
        finish_event: threading.Event | None = None,
    ) -> AttentionResult | None:
        """Continue `prompt` on the generation model (None only when `stop_event` was set)."""
        loaded = self.model(self.generation_key)
        with loaded.turn():
            if stop_event is not None and stop_event.is_set():  # the caller left while waiting for the model
                return None
            return run_generation(loaded, prompt, settings, self.max_attention_tokens, on_token=on_token,
                                  stop_event=stop_event, finish_event=finish_event)

    def stream(self, prompt: str, settings: GenerationSettings,
               finish_early: threading.Event | None = None) -> Iterator[str | AttentionResult]:
        """Generate on a worker thread; yield the text so far after each token, then the result (see
        ModelService.stream_generate: `finish_early` still yields the result, closing the iterator frees the model)."""
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                if stop.is_set():
                    events.put(("done", None))
                    return
                result = self.generate(prompt, settings, on_token=lambda ids: events.put(("tokens", ids)),
                                               stop_event=stop, finish_event=finish_early)
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
                    text = self.decode(payload)
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

    def answer(self, context: str, question: str, zero_shot: bool = False) -> AttentionResult:
        raise NotImplementedError

    def translate(self, text: str, direction: str, zero_shot: bool = False) -> AttentionResult:
        raise NotImplementedError

    def classify(self, text: str, zero_shot: bool = False) -> AttentionResult:
        raise NotImplementedError

    def task_keys(self, task: str) -> list[str]:
        """Model keys a task runs on (translation: one per direction where they differ)."""
        raise NotImplementedError

    def decode(self, token_ids: list[int]) -> str:
        """Text of generated ids, as the generation model's tokenizer writes it."""
        return self.model(self.generation_key).tokenizer.decode(token_ids, skip_special_tokens=True)

    # --- looking inside the generation model ------------------------------------------------------
    def head_roles(self) -> list[HeadRole]:
        """Every head of the generation model with its role and scores (service/probes/head_roles.py); the probe
        runs once per backend and is kept."""
        with self._registry_lock:
            if self._head_roles is not None:
                return self._head_roles
        loaded = self.model(self.generation_key)
        with loaded.turn():
            roles = probe_head_roles(loaded.model, loaded.tokenizer)
        with self._registry_lock:
            self._head_roles = roles
        return roles

    def logit_lens(self, token_ids: list[int], tokens: list[str], start: int, end: int, k: int) -> LogitLens:
        """The logit lens of the generation model over `token_ids` (service/probes/logit_lens.py)."""
        loaded = self.model(self.generation_key)
        names: dict[int, str] = {}

        def token_text(token_id: int) -> str:
            if token_id not in names:
                names[token_id] = display_tokens(loaded.tokenizer, [token_id])[0][0]
            return names[token_id]

        with loaded.turn():
            return logit_lens(loaded.model, token_ids, token_text, tokens, start, end, k)

    def lesson_companions(self) -> tuple[str | None, str | None]:
        """(encoder key, encoder-decoder key) beside the generation model, for the Lesson's comparisons; None where
        the profile has none. Nothing is loaded. The encoder is an Explain choice other than the generation model
        (MiniLM), else the sentiment model when the profile runs one of its own (a DistilBERT specialist); the
        encoder-decoder is the translation model when the profile runs one of its own (specialist translation runs
        only on Marian, service/tasks/translation.py)."""
        def own(keys: list[str]) -> str | None:
            return next((key for key in keys if key != self.generation_key), None)

        encoder = own(list(self.explain_keys.values())) or own(self.task_keys("sentiment"))
        return encoder, own(self.task_keys("translation"))

    # --- Explain ------------------------------------------------------------------------------------
    def explain_model(self, choice: str) -> LoadedModel:
        """The loaded model behind an Explain choice ("default", "minilm", …; checked by the caller)."""
        return self.model(self.explain_keys[choice])

    def explain_shape(self, choice: str) -> tuple[int, int] | None:
        """(layers, heads) of an Explain choice without loading anything: the loaded config, or one on disk."""
        key = self.explain_keys[choice]
        with self._registry_lock:
            loaded = self._models.get(key)
        if loaded is not None:
            config = loaded.model.config
            return int(config.num_hidden_layers), int(config.num_attention_heads)
        path = self.source.config_on_disk(key)
        if path is None:
            return None
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            return int(config["num_hidden_layers"]), int(config["num_attention_heads"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # --- models -------------------------------------------------------------------------------------
    def model_name(self, key: str) -> str:
        return self.source.name(key)

    def loaded_keys(self) -> list[str]:
        """Keys of the models loaded so far."""
        with self._registry_lock:
            return list(self._models)

    def model(self, key: str, progress: Progress | None = None) -> LoadedModel:
        """The loaded model for `key`, loading it once (other keys keep loading and serving meanwhile)."""
        with self._registry_lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._load_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._registry_lock:
                if key in self._models:
                    return self._models[key]
            loaded = self.source.load(key, self.device, progress)
            with self._registry_lock:
                self._models[key] = loaded
            return loaded

    def run(self, key: str, runner: Callable[[LoadedModel], Any]) -> Any:
        """runner(loaded model) on its turn (LoadedModel.turn: lock, inference mode, the heap given back)."""
        loaded = self.model(key)
        with loaded.turn():
            return runner(loaded)
