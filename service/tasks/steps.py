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
    """Collects per-step top-k candidates while `generate` runs. Attach with `attach(model)`, detach after.

    A step's whole next-token distribution (the vocabulary: 262,144 floats, 1 MB on Gemma) is kept only until the
    token chosen at that step is known (the next step's input, or `steps` for the last one): then the chosen
    token's probability and rank are read from it and it is dropped. Keeping every step's distribution would hold
    2 MB per generated token, 420 MB for a 200-token sampled generation."""

    def __init__(self, k: int, token_text: Callable[[int], str], generation_config: Any) -> None:
        self.k = k
        self.sampling = bool(generation_config.do_sample)
        self._warpers = _sampling_warpers(generation_config) if self.sampling else []
        self.token_text = token_text
        self._raw: list[tuple[list[int], list[float]]] = []        # per step: top-k ids, their raw probabilities
        self._processed: list[tuple[list[int], list[float]]] = []  # per step: the same after the warpers
        self._pending_raw: dict[int, Any] = {}        # step → (vocab,) log-softmax, until its chosen token is known
        self._pending_processed: dict[int, Any] = {}  # step → (vocab,) sampled-from probabilities, likewise
        self._chosen: list[dict[str, Any]] = []       # per resolved step: token_id, p, rank, p_sampling
        self._prompt_length: int | None = None
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
        self._pending_raw[len(self._raw)] = log_probs
        self._raw.append((top.indices.tolist(), top.values.exp().tolist()))

    def _on_scores(self, input_ids: Any, scores: Any) -> None:
        """generate's processors ran on this step's scores; `input_ids` (1, prompt + steps so far) holds every token
        chosen before this step, so those steps are resolved first."""
        import torch

        if self._prompt_length is None:
            self._prompt_length = int(input_ids.shape[1])
        chosen_so_far = input_ids[0, self._prompt_length:].tolist()
        self._resolve(chosen_so_far)
        if not self.sampling:
            return
        warped = scores
        for warper in self._warpers:
            warped = warper(input_ids, warped)
        probs = torch.softmax(warped[0].float(), dim=-1)               # (vocab,) -inf (cut) → 0
        top = torch.topk(probs, self.k)
        self._pending_processed[len(self._processed)] = probs
        self._processed.append((top.indices.tolist(), top.values.tolist()))

    def _resolve(self, chosen_ids: list[int]) -> None:
        """Reads the chosen token's probability and rank for every step whose token is now known, then drops that
        step's whole distribution."""
        for index in range(len(self._chosen), min(len(chosen_ids), len(self._raw))):
            chosen = int(chosen_ids[index])
            log_probs = self._pending_raw.pop(index)
            chosen_log_prob = log_probs[chosen]
            resolved: dict[str, Any] = {"token_id": chosen, "p": float(chosen_log_prob.exp()),
                                        "rank": int((log_probs > chosen_log_prob).sum())}
            if index in self._pending_processed:
                resolved["p_sampling"] = float(self._pending_processed.pop(index)[chosen])
            self._chosen.append(resolved)

    def processor(self) -> Any:
        """A LogitsProcessor that resolves the steps already chosen and records the distribution sampling draws
        from (after every warper)."""
        return _RecordScores(self)

    # --- result -------------------------------------------------------------------------------------
    def steps(self, chosen_ids: list[int]) -> list[dict[str, Any]]:
        """One entry per generated token: token, candidates [{token, p}] (raw softmax, temperature 1), the chosen
        token's raw probability `p` and `rank` (0 = the model's top choice), and when sampling,
        `sampling_candidates` [{token, p}] after temperature / top-k / top-p with the chosen token's `p_sampling`."""
        self._resolve(chosen_ids)
        self._pending_raw.clear()
        self._pending_processed.clear()
        steps = []
        for index, resolved in enumerate(self._chosen):
            if resolved["token_id"] != int(chosen_ids[index]):
                raise RuntimeError(f"step {index}: generate returned token {chosen_ids[index]}, the recorder saw "
                                   f"{resolved['token_id']} chosen")
            ids, probs = self._raw[index]
            step: dict[str, Any] = {
                "token": self.token_text(resolved["token_id"]),
                "token_id": resolved["token_id"],
                "p": resolved["p"],
                "rank": resolved["rank"],
                "candidates": [{"token": self.token_text(i), "p": float(p)} for i, p in zip(ids, probs)],
            }
            if "p_sampling" in resolved:
                sampled_ids, sampled_probs = self._processed[index]
                step["sampling_candidates"] = [{"token": self.token_text(i), "p": float(p)}
                                               for i, p in zip(sampled_ids, sampled_probs) if p > 0]
                step["p_sampling"] = resolved["p_sampling"]
            steps.append(step)
        return steps


class _RecordScores:
    """The recorder's LogitsProcessor. A module-level class holding its recorder, so a generation leaves no
    reference cycle behind (a class defined per call is one, and kept the recorder's tensors until a full gc)."""

    def __init__(self, recorder: StepRecorder) -> None:
        self.recorder = recorder

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.recorder._on_scores(input_ids, scores)
        return scores


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
