"""Generation on any causal LM (GPT-2, Gemma): sample or decode greedily on the fast kernel, then capture attention.

preprocess (tokenise, check the position limit) → forward (`model.generate` on sdpa, streaming each token)
→ postprocess (one eager pass over prompt + continuation: a decoder result, segments prompt / generated).
Call with the model's lock held.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from service import limits
from service.errors import InvalidInputError
from service.models.loading import LoadedModel
from service.result import AttentionResult, Segment
from service.attention.tokens import display_tokens
from service.tasks.common import as_tensor, decoder_result, max_positions, sink_segment
from service.tasks.steps import DEFAULT_TOP_K, StepRecorder

# torch's global RNG is shared by all threads: sampling requests hold this lock from seeding to the last token.
_SAMPLING_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class GenerationSettings:
    """How to pick each next token: temperature 0 = greedy; top_k 0 and top_p 1 = no cut."""

    max_new_tokens: int = limits.DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    min_new_tokens: int = 0
    record_top_k: int = DEFAULT_TOP_K    # candidates recorded per step (0 = record none)

    @property
    def sampling(self) -> bool:
        return self.temperature > 0


def run_generation(
    loaded: LoadedModel,
    prompt: str,
    settings: GenerationSettings,
    max_attention_tokens: int,
    on_token: Callable[[list[int]], None] | None = None,
    stop_event: threading.Event | None = None,
    finish_event: threading.Event | None = None,
) -> AttentionResult | None:
    """Generate a continuation with sdpa, then capture attention over prompt + continuation in one eager pass.

    Each step's top-k candidates are recorded on the way (result.generation_steps, see service/tasks/steps.py).
    `on_token(new_ids)` is called with all generated ids so far after each step. Generation stops within one token
    once `stop_event` is set, and then no result is built (returns None); once `finish_event` is set it also stops,
    but the result is built for the text so far, with a notice.
    """
    import torch
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    tokenizer, model = loaded.tokenizer, loaded.model
    started = time.perf_counter()
    prompt_ids = tokenizer(prompt)["input_ids"]
    limit = max_positions(model.config)
    if limit is not None and len(prompt_ids) + settings.max_new_tokens > limit:
        raise InvalidInputError(
            f"The prompt is {len(prompt_ids)} tokens; {loaded.name} reads at most {limit} tokens including the "
            f"{settings.max_new_tokens} new ones. Shorten the prompt or ask for fewer new tokens."
        )

    class StopWhenSet(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = any(event is not None and event.is_set() for event in (stop_event, finish_event))
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    class TokenCallback(BaseStreamer):
        def __init__(self) -> None:
            self.generated: list[int] = []
            self.seen_prompt = False

        def put(self, value: Any) -> None:
            if not self.seen_prompt:  # generate() first puts the prompt
                self.seen_prompt = True
                return
            self.generated.extend(int(token) for token in value.reshape(-1).tolist())
            if on_token is not None:
                on_token(list(self.generated))

        def end(self) -> None:
            pass

    eos = model.generation_config.eos_token_id
    pad = model.generation_config.pad_token_id
    if pad is None:
        pad = eos[0] if isinstance(eos, list) else eos
    config_args: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "min_new_tokens": settings.min_new_tokens or None,
        "do_sample": settings.sampling,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "bos_token_id": model.generation_config.bos_token_id,
        "num_beams": 1,
    }
    if settings.sampling:
        config_args.update(temperature=settings.temperature, top_k=settings.top_k or None, top_p=settings.top_p)
    generation_config = GenerationConfig(**config_args)
    input_ids = as_tensor(prompt_ids, loaded.device)  # (1, prompt_len)
    recorder = _recorder(tokenizer, settings, generation_config)
    generate_args = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "generation_config": generation_config,
        "stopping_criteria": StoppingCriteriaList([StopWhenSet()]),
        "streamer": TokenCallback() if on_token is not None else None,
    }
    if recorder is not None:
        generate_args["logits_processor"] = LogitsProcessorList([recorder.processor()])
        recorder.attach(model)
    try:
        if settings.sampling:
            with _SAMPLING_RNG_LOCK:
                torch.manual_seed(settings.seed)
                output = model.generate(**generate_args)
        else:
            output = model.generate(**generate_args)
    finally:
        if recorder is not None:
            recorder.detach()
    generated_at = time.perf_counter()
    if stop_event is not None and stop_event.is_set():
        return None

    sequence = output[0].tolist()  # prompt + generated ids
    continuation_ids = sequence[len(prompt_ids):]
    text = tokenizer.decode(continuation_ids, skip_special_tokens=True)
    sink = sink_segment(tokenizer, sequence)
    segments = sink + [
        Segment("prompt", len(sink), len(prompt_ids)),
        Segment("generated", len(prompt_ids), len(sequence), role="output"),
    ]
    result = decoder_result(
        loaded, "generation", sequence, segments, max_attention_tokens, prediction={"text": text}, prompt=prompt
    )
    result.timings = {"model": generated_at - started, "capture": result.timings["capture"]}
    if recorder is not None:
        result.generation_steps = recorder.steps(continuation_ids)
    if finish_event is not None and finish_event.is_set() and len(continuation_ids) < settings.max_new_tokens:
        result.notices.append(f"Stopped on request after {len(continuation_ids)} of {settings.max_new_tokens} new "
                              "tokens; the attention shown is for the text written so far.")
    return result


def _recorder(tokenizer: Any, settings: GenerationSettings, generation_config: Any) -> StepRecorder | None:
    """A StepRecorder that names candidate tokens as the attention view does (readable CJK), or None."""
    if settings.record_top_k <= 0:
        return None
    names: dict[int, str] = {}

    def token_text(token_id: int) -> str:
        if token_id not in names:
            names[token_id] = display_tokens(tokenizer, [token_id])[0][0]
        return names[token_id]

    return StepRecorder(min(settings.record_top_k, len(tokenizer)), token_text, generation_config)
