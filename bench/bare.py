"""The bare baseline: the same model and inputs as the service, called with plain transformers (sdpa, no attention).

`bare_model(profile, key, device)` loads the model a profile uses for a task key, independently of the service.
`bare_call(bare, result, inputs)` returns a zero-argument function that redoes the model work behind `result`
as cheaply as transformers allows: `generate` with exactly as many new tokens for generated outputs, one forward
(last-position logits only for causal LMs) for classifiers and extractive QA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from service import limits
from service.backends import make_backend
from service.result import AttentionResult

# Segment names the service gives to tokens the model generated (service/specialists.py, service/fewshot.py).
GENERATED_SEGMENTS = ("generated", "answer", "translation")


@dataclass
class BareModel:
    """A transformers model + tokenizer on one device, used only through public transformers calls."""

    model: Any
    tokenizer: Any
    device: str

    def encode(self, *texts: str, max_length: int | None = None, truncation: Any = False) -> dict[str, Any]:
        """Tokenised inputs on the device (batch of 1); `texts` is (text,) or (question, context)."""
        import inspect

        encoding = self.tokenizer(*texts, return_tensors="pt", truncation=truncation, max_length=max_length)
        accepted = inspect.signature(self.model.forward).parameters  # DistilBERT takes no token_type_ids
        return {name: tensor.to(self.device) for name, tensor in encoding.items() if name in accepted}

    def generate(self, inputs: dict[str, Any], new_tokens: int) -> Any:
        """Greedy generate of exactly `new_tokens` tokens (EOS suppressed before that), the default kernel."""
        import torch

        config = self.model.generation_config
        eos = config.eos_token_id
        pad = config.pad_token_id if config.pad_token_id is not None else (eos[0] if isinstance(eos, list) else eos)
        with torch.inference_mode():
            return self.model.generate(
                **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
                top_k=None, top_p=None, temperature=None, pad_token_id=pad,
            )

    def forward(self, inputs: dict[str, Any], last_position_only: bool) -> Any:
        """One forward pass; causal LMs compute logits for the last position only (no T × vocab logits)."""
        import torch

        extra = {"logits_to_keep": 1} if last_position_only else {}
        with torch.inference_mode():
            return self.model(**inputs, **extra)


def bare_model(profile: str, key: str, device: str) -> BareModel:
    """The model `profile` runs for `key` ("generation", "qa", "sentiment", "translation.en-zh", ...), loaded
    afresh from the profile's model source (the same files and loader, but none of the service's task code):
    embedded → the converted Gemma; tiny → the seeded tiny builders; hub → the pinned hub models (needs them in the
    Hugging Face cache, or network)."""
    backend = make_backend(profile, device, limits.DEFAULT_MAX_ATTENTION_TOKENS)
    keys = backend.task_keys(key.split(".")[0])
    return _cached_bare_model(profile, key if key in keys else keys[0], device)


@lru_cache(maxsize=None)
def _cached_bare_model(profile: str, model_key: str, device: str) -> BareModel:
    backend = make_backend(profile, device, limits.DEFAULT_MAX_ATTENTION_TOKENS)
    loaded = backend.source.load(model_key, device, None)
    return BareModel(loaded.model, loaded.tokenizer, device)


def model_key_for(task: str, result: AttentionResult) -> str:
    """The task key of the model behind `result` (translation has one model per direction)."""
    if task == "translation":
        return f"translation.{result.prediction.get('direction', 'en-zh')}"
    return task


def generated_count(result: AttentionResult) -> int:
    """How many tokens the model generated for `result` (0 when it only read its input)."""
    if result.architecture == "encoder":
        return 0
    if result.architecture == "encoder-decoder":
        return max(1, len(result.tokens("decoder")) - 1)  # minus the decoder start token
    if result.task == "sentiment":                       # few-shot sentiment scores labels, it does not generate
        return 0
    for segment in result.segments:
        if segment.side == "decoder" and segment.name in GENERATED_SEGMENTS:
            count = segment.end - segment.start
            # A few-shot answer is cut at the newline or EOS the model generated last: one more decoding step.
            return count + 1 if segment.name == "answer" else count
    return 1 if result.task in ("qa", "translation") else 0  # an empty few-shot answer still took one step


def new_sequence_tokens(result: AttentionResult) -> int:
    """Tokens after the prompt in a decoder result's sequence (the generated text, without a final stop token)."""
    for segment in result.segments:
        if segment.side == "decoder" and segment.name in GENERATED_SEGMENTS:
            return segment.end - segment.start
    return 0


def bare_call(bare: BareModel, result: AttentionResult, task: str, inputs: dict[str, str]) -> Callable[[], Any]:
    """A function redoing the model work behind `result` with plain transformers.

    `inputs` are the task's text inputs: {"prompt"}, {"context", "question"}, {"text"}.
    Decoder results are re-encoded from `result.prompt` (the exact prompt, demonstrations included).
    """
    new_tokens = generated_count(result)
    if result.architecture == "encoder":
        length = len(result.tokens("encoder"))
        if task == "qa":
            encoded = bare.encode(inputs["question"], inputs["context"], max_length=length, truncation="only_second")
        else:
            encoded = bare.encode(inputs["text"], max_length=length, truncation=True)
        return lambda: bare.forward(encoded, last_position_only=False)
    prompt = result.prompt if result.prompt is not None else inputs.get("prompt") or inputs.get("text", "")
    encoded = bare.encode(prompt)
    if new_tokens == 0:
        return lambda: bare.forward(encoded, last_position_only=True)
    return lambda: bare.generate(encoded, new_tokens)
