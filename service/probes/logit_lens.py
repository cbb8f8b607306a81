"""The logit lens: what the model would predict if it stopped after layer ℓ, for every layer and position.

After each decoder block, the residual stream h_ℓ (positions, D) goes through the model's own final norm and
unembedding (Gemma: RMSNorm then the tied embedding table, × its soft cap when the config has one), exactly as
the last layer's output does: logits_ℓ = W_U · norm(h_ℓ). The last layer's lens must then equal the model's real
output distribution; `max_diff_vs_model` says how close it is (probabilities, target < 1e-4).
One forward pass with hooks on the blocks; only `start:end` positions are unembedded (T × vocab logits of a long
text would not fit: Gemma's vocabulary has 262,144 entries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from service.errors import InvalidInputError

MAX_LENS_POSITIONS = 64     # positions unembedded per call: 64 × 262,144 float32 logits = 67 MB per layer


@dataclass
class LogitLens:
    """Top-k tokens after each layer for positions start..end-1 (the prediction *for the next token*)."""

    tokens: list[str]                       # the input tokens at start..end-1 (the position that predicts)
    start: int
    end: int
    layers: list[list[list[dict[str, Any]]]] = field(repr=False)   # [layer][position][rank] {"token", "p"}
    max_diff_vs_model: float = 0.0

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def to_json(self) -> dict[str, Any]:
        """The /logit_lens shape: {"tokens", "layers": [[{"token", "p"} per position] per layer], ...} (top 1)."""
        return {"tokens": self.tokens, "start": self.start, "end": self.end,
                "layers": [[ranked[0] for ranked in layer] for layer in self.layers],
                "max_diff_vs_model": self.max_diff_vs_model}


def logit_lens(model: Any, token_ids: list[int], token_text: Callable[[int], str], tokens: list[str],
               start: int = 0, end: int | None = None, k: int = 3) -> LogitLens:
    """The lens of a causal LM over `token_ids` (display `tokens`), positions start..end-1, top `k` per cell.
    Hold the model's lock and inference mode."""
    import torch

    from service.families import adapter_for

    adapter = adapter_for(model)
    total = len(token_ids)
    end = total if end is None else end
    if not 0 <= start < end <= total:
        raise InvalidInputError(f"The lens range {start}..{end} must lie inside the {total} tokens.")
    if end - start > MAX_LENS_POSITIONS:
        raise InvalidInputError(f"The lens shows at most {MAX_LENS_POSITIONS} positions at a time; "
                                f"{start}..{end} is {end - start}. Choose a shorter range.")
    captured: list[Any] = []
    handles = [block.register_forward_hook(lambda _m, _a, output: captured.append(
        (output[0] if isinstance(output, tuple) else output)[0, start:end])) for block in adapter.layers(model)]
    try:
        outputs = model(input_ids=torch.tensor([token_ids], device=model.device), use_cache=False,
                        logits_to_keep=total - start)
    finally:
        for handle in handles:
            handle.remove()
    model_probs = torch.softmax(outputs.logits[0, : end - start].float(), dim=-1)   # (positions, vocab)
    stacked = torch.stack(captured)                                           # (layer, positions, D)
    logits = adapter.logits(model, stacked).float()                           # (layer, positions, vocab): one pass
    top = torch.topk(logits, k, dim=-1)                                       # over the unembedding matrix
    top_probs = (top.values - torch.logsumexp(logits, dim=-1, keepdim=True)).exp()   # (layer, positions, k)
    layers = [[[{"token": token_text(int(i)), "p": float(p)} for i, p in zip(ids, ps)]
               for ids, ps in zip(layer_ids, layer_ps)]
              for layer_ids, layer_ps in zip(top.indices.tolist(), top_probs.tolist())]
    last_probs = torch.softmax(logits[-1], dim=-1)                            # (positions, vocab)
    max_diff = float((last_probs - model_probs).abs().max())
    return LogitLens(tokens[start:end], start, end, layers, max_diff)
