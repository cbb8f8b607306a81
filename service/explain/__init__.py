"""Self-attention step by step: recompute one head's attention row from the model's own weights and verify it.

`explain_attention` runs ONE eager forward pass over the text with hooks that capture what enters and leaves the
chosen layer, then recomputes the chosen head by hand with the layer's own weights:

    tokens → ids → embedding rows (× the model's embedding scale) → residual stream entering layer ℓ
    → normalised input X (pre-norm models) → Q = X W_Q, K = X W_K, V = X W_V of the head
    → q/k norm and RoPE (where the family has them) → scores q·Kᵀ × scale → causal / sliding-window mask
    → softmax (the row) → row · V (the head's output) → concat(heads) W_O → residual add and norm.

Every recomputed stage is compared with the tensor the model itself produced (`checks`); the headline check is the
attention row against the model's own `output_attentions` row (`max_abs_diff`, target < 1e-4).

Where each family keeps these parts is its adapter's business (service/families/); the recompute never asks which
family it is. Families whose adapter is not `explainable` (Marian, encoder-decoder) and families without an adapter
raise UnsupportedError rather than showing numbers that would be wrong for that architecture.

Thread safety: the model's attention implementation is switched to eager for the pass and restored afterwards.
Pass the model's lock as `lock`, or hold it yourself around the call (ModelService.explain does).

Modules: result.py (ExplainResult), walkthrough.py (explain_attention), hooks.py (what is captured),
recompute.py (the hand computation), card.py (architecture_card), display.py (token labels).
"""

from service.explain.card import architecture_card
from service.explain.result import TOLERANCE, ExplainResult
from service.explain.walkthrough import MAX_EXPLAIN_TOKENS, explain_adapter, explain_attention, explainable_families

__all__ = ["MAX_EXPLAIN_TOKENS", "TOLERANCE", "ExplainResult", "architecture_card", "explain_adapter",
           "explain_attention", "explainable_families"]
