"""API endpoints that look inside the model: segment shares, zero- vs few-shot, generation steps, logit lens, head roles.

Each runs on the shared model service with the model events' concurrency (one model run at a time, fair turns) and
answers plain JSON; bad input raises gr.Error with a sentence that says what to change. The tabs show the same
numbers from a kept result; these endpoints are for scripts and notebooks (gradio_client).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from demos import MODEL_CONCURRENCY_ID, MODEL_CONCURRENCY_LIMIT, user_errors
from service import limits
from service.analysis.segments import segment_shares
from service.errors import InvalidInputError
from service.validation import check_choice, check_number

INSIGHT_API = ("segment_attention", "compare_shots", "next_tokens", "logit_lens", "head_roles")
SHOT_TASKS = ("qa", "translation", "sentiment")
_MODEL = {"concurrency_id": MODEL_CONCURRENCY_ID, "concurrency_limit": MODEL_CONCURRENCY_LIMIT}


def build_insight_api(service: Any) -> None:
    """Register the five endpoints on the Blocks being built (call inside `with gr.Blocks()`)."""

    def segment_attention(task: str, inputs: dict, layer: int = -1) -> dict:
        """Share of the produced tokens' attention on each segment (instruction, demonstration k, your input, the
        answer so far, the first token), per layer, mean over heads. layer -1 = every layer."""
        with user_errors():
            task = check_choice(task, "task", limits.TASKS)
            result = service.run_task(task, inputs)
            chosen = int(check_number(layer, "layer", -1, result.num_layers - 1, integer=True))
            shares = [share.to_dict() for share in segment_shares(result)]
            if chosen >= 0:
                for share in shares:
                    share["share_by_layer"] = [share["share_by_layer"][chosen]]
            return {"task": task, "layer": chosen, "prediction": result.prediction, "segments": shares}

    def compare_shots(task: str, inputs: dict) -> dict:
        """The same input with the demonstrations (few-shot) and without them (zero-shot): both answers."""
        with user_errors():
            task = check_choice(task, "task", SHOT_TASKS)
            few, zero = service.compare_shots(task, inputs)
            return {"few_shot": few.prediction, "zero_shot": zero.prediction}

    def next_tokens(prompt: str, max_new_tokens: int = limits.DEFAULT_MAX_NEW_TOKENS, temperature: float = 0.0,
                    top_k: int = 0, top_p: float = 1.0, seed: int = 0, k: int = 10) -> dict:
        """Generate, and for each new token the top-k candidates the model weighed (p: raw softmax, temperature 1)
        and the chosen token's rank (0 = the model's first choice)."""
        with user_errors():
            if isinstance(k, bool) or k in (0, None):
                raise InvalidInputError("k must be a whole number from 1 to 50: how many candidates per step.")
            result = service.generate(prompt, max_new_tokens, temperature, top_k, top_p, seed, candidates=k)
            steps = [{"token": step["token"], "candidates": step["candidates"], "rank": step["rank"]}
                     for step in result.generation_steps or []]
            return {"text": result.prediction["text"], "steps": steps}

    def logit_lens(text: str) -> dict:
        """The top token after every layer for each position of `text` (the last 64 when it is longer), read
        through the model's own final norm and unembedding; max_diff_vs_model checks the last layer."""
        with user_errors():
            lens = service.logit_lens(text, k=1)
            payload = lens.to_json()
            return {"tokens": payload["tokens"], "layers": payload["layers"],
                    "max_diff_vs_model": payload["max_diff_vs_model"]}

    def head_roles() -> dict:
        """Every head of the generation model with its role and the probe scores behind it."""
        with user_errors():
            return {"heads": [head.to_dict() for head in service.head_roles()]}

    for fn in (segment_attention, compare_shots, next_tokens, logit_lens, head_roles):
        gr.api(fn, api_name=fn.__name__, **_MODEL)
