"""Generation step by step: at each new token, the model's own top-k candidates and what sampling made of them.

A `StepRecorder` rides along `model.generate` (no second run): a forward hook reads the raw next-token logits of
every decoding step, and a logits processor reads the scores generate's own processors made of them, then applies
the same temperature / top-k / top-p warpers generate applies after it (transformers runs custom processors
before its warpers) to get the distribution that was actually sampled from. `steps(chosen_ids)` then says, for each generated token, the top-k candidates with
raw probabilities (temperature 1), the sampled distribution's top-k, and the chosen token's rank and probability.
"""

from __future__ import annotations

from typing import Any, Callable

DEFAULT_TOP_K = 10
MAX_TOP_K = 50


class StepRecorder:
    """Collects per-step top-k candidates while `generate` runs. Attach with `attach(model)`, detach after."""

    def __init__(self, k: int, token_text: Callable[[int], str], generation_config: Any) -> None:
        self.k = k
        self.sampling = bool(generation_config.do_sample)
        self._warpers = _sampling_warpers(generation_config) if self.sampling else []
        self.token_text = token_text
        self._raw: list[tuple[Any, Any, Any]] = []       # per step: (top-k ids, top-k probs, full log-softmax)
        self._processed: list[tuple[Any, Any, Any]] = []  # per step: (top-k ids, top-k probs, full probs)
        self._handle: Any = None

    # --- hooks ----------------------------------------------------------------------------------------
    def attach(self, model: Any) -> None:
        self._handle = model.register_forward_hook(self._on_forward)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _on_forward(self, module: Any, args: Any, output: Any) -> None:
        import torch

        logits = output.logits[0, -1].float()                          # (vocab,) the next token's raw logits
        log_probs = torch.log_softmax(logits, dim=-1)                  # (vocab,)
        top = torch.topk(log_probs, self.k)
        self._raw.append((top.indices.tolist(), top.values.exp().tolist(), log_probs))

    def processor(self) -> Any:
        """A LogitsProcessor that records the distribution sampling draws from (after every warper)."""
        from transformers import LogitsProcessor

        recorder = self

        class RecordProcessed(LogitsProcessor):
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                import torch

                warped = scores
                for warper in recorder._warpers:
                    warped = warper(input_ids, warped)
                probs = torch.softmax(warped[0].float(), dim=-1)       # (vocab,) -inf (cut) → 0
                top = torch.topk(probs, recorder.k)
                recorder._processed.append((top.indices.tolist(), top.values.tolist(), probs))
                return scores

        return RecordProcessed()

    # --- result -------------------------------------------------------------------------------------
    def steps(self, chosen_ids: list[int]) -> list[dict[str, Any]]:
        """One entry per generated token: token, candidates [{token, p}] (raw softmax, temperature 1), the chosen
        token's raw probability `p` and `rank` (0 = the model's top choice), and when sampling,
        `sampling_candidates` [{token, p}] after temperature / top-k / top-p with the chosen token's `p_sampling`."""
        steps = []
        for index, chosen in enumerate(chosen_ids[: len(self._raw)]):
            ids, probs, log_probs = self._raw[index]
            chosen_log_prob = log_probs[chosen]
            step: dict[str, Any] = {
                "token": self.token_text(chosen),
                "token_id": int(chosen),
                "p": float(chosen_log_prob.exp()),
                "rank": int((log_probs > chosen_log_prob).sum()),
                "candidates": [{"token": self.token_text(i), "p": float(p)} for i, p in zip(ids, probs)],
            }
            if self.sampling and index < len(self._processed):
                sampled_ids, sampled_probs, full = self._processed[index]
                step["sampling_candidates"] = [{"token": self.token_text(i), "p": float(p)}
                                               for i, p in zip(sampled_ids, sampled_probs) if p > 0]
                step["p_sampling"] = float(full[chosen])
            steps.append(step)
        return steps


def _sampling_warpers(generation_config: Any) -> list[Any]:
    """The warpers generate() appends for sampling, in its order: temperature, top-k, top-p."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers: list[Any] = []
    if generation_config.temperature is not None and generation_config.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(generation_config.temperature))
    if generation_config.top_k:
        warpers.append(TopKLogitsWarper(top_k=generation_config.top_k, min_tokens_to_keep=1))
    if generation_config.top_p is not None and generation_config.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=generation_config.top_p, min_tokens_to_keep=1))
    return warpers
