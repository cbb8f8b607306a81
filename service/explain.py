"""Self-attention step by step: recompute one head's attention row from the model's own weights and verify it.

`explain_attention` runs ONE eager forward pass over the text with hooks that capture what enters and leaves the
chosen layer, then recomputes the chosen head by hand with the layer's own weights:

    tokens → ids → embedding rows (× the model's embedding scale) → residual stream entering layer ℓ
    → normalised input X (pre-norm models) → Q = X W_Q, K = X W_K, V = X W_V of the head
    → q/k RMSNorm and RoPE (Gemma 3) → scores q·Kᵀ × scale → causal / sliding-window mask → softmax (the row)
    → row · V (the head's output) → concat(heads) W_O → residual add and norm.

Every recomputed stage is compared with the tensor the model itself produced (`checks`); the headline check is the
attention row against the model's own `output_attentions` row (`max_abs_diff`, target < 1e-4).

Supported families (config.model_type): gemma3_text, bert (MiniLM), gpt2, distilbert. Anything else raises
UnsupportedError rather than showing numbers that would be wrong for that architecture.

Thread safety: the model's attention implementation is switched to eager for the pass and restored afterwards.
Pass the model's lock as `lock`, or hold it yourself around the call (ModelService.explain does).
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from service.errors import InvalidInputError, UnsupportedError

MAX_EXPLAIN_TOKENS = 64
TOLERANCE = 1e-4
SUPPORTED_FAMILIES = ("gemma3_text", "bert", "gpt2", "distilbert")
FAMILY_NAMES = {"gemma3_text": "Gemma 3", "bert": "BERT / MiniLM", "gpt2": "GPT-2", "distilbert": "DistilBERT"}


# --------------------------------------------------------------------------------------------- the result
@dataclass
class ExplainResult:
    """One head's attention for one query token, recomputed by hand and compared with the model's own.

    Shapes (T = tokens, D = hidden size, d = head dim, H = query heads):
        token_embeddings   (T, D)  rows of the embedding table for the ids (before any scaling)
        input_embeddings   (T, D)  what enters layer 0 (scaled / plus positions / normalised, per family)
        layer_input        (T, D)  the residual stream entering layer `layer`
        attention_input    (T, D)  X: what the attention's projections read (after input norm on pre-norm models)
        query_raw, key_raw, value   (T, d)  X W_Q (this head), X W_K and X W_V (its key/value head), biases included
        query_normed, key_normed    (T, d) | None  after q_norm / k_norm (Gemma 3)
        query, key                  (T, d)  what the scores use (after norm and RoPE where the model has them)
        scores_raw         (T,)   q_position · K_j × scale for every key j, before the mask
        mask               (T,)   True where key j may be attended to from `position`
        scores_masked      (T,)   scores_raw with -inf where the mask forbids
        recomputed         (T,)   softmax(scores_masked): the recomputed attention row
        model_row          (T,)   the model's own attention row (output_attentions, eager)
        head_output        (d,)   recomputed · V
        heads_concat       (H·d,) all heads' outputs at `position`, concatenated (recomputed)
        attention_output   (D,)   heads_concat W_O (+ bias): the attention sublayer's output (recomputed)
        block_output       (D,)   after the residual add and norm that follow attention (recomputed)
        residual           (D,)   the residual stream at `position` that the attention output is added to
    """

    model_name: str
    family: str                      # config.model_type, e.g. "gemma3_text"
    architecture: str                # "decoder-only" | "encoder-only"
    text: str
    tokens: list[str]
    token_ids: list[int]
    special: list[bool]
    layer: int
    head: int
    position: int
    kv_head: int
    num_layers: int
    num_heads: int
    num_key_value_heads: int
    head_dim: int
    hidden_size: int
    layer_type: str                  # "full" (causal), "sliding:<window>" or "bidirectional"
    scale: float
    embedding_scale: float | None
    norm_placement: str              # "pre-norm" | "post-norm" | "pre+post (sandwich)"
    token_embeddings: np.ndarray
    input_embeddings: np.ndarray
    layer_input: np.ndarray
    attention_input: np.ndarray
    query_raw: np.ndarray
    key_raw: np.ndarray
    value: np.ndarray
    query_normed: np.ndarray | None
    key_normed: np.ndarray | None
    query: np.ndarray
    key: np.ndarray
    scores_raw: np.ndarray
    mask: np.ndarray
    scores_masked: np.ndarray
    recomputed: np.ndarray
    model_row: np.ndarray
    head_output: np.ndarray
    heads_concat: np.ndarray
    attention_output: np.ndarray
    residual: np.ndarray
    block_output: np.ndarray
    max_abs_diff: float
    passed: bool
    # stage → max |recomputed − model|, divided by max(1, max |model|) for the hidden-size vectors (the residual
    # stream of deep layers reaches ~10³, where float32 rounding alone is ~10⁻⁴ absolute)
    checks: dict[str, float] = field(default_factory=dict)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uses_rope: bool = False
    uses_qk_norm: bool = False
    tolerance: float = TOLERANCE
    card: dict[str, Any] = field(default_factory=dict)       # architecture_card(model) of the explained model

    @property
    def causal(self) -> bool:
        return self.layer_type != "bidirectional"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready answer of the `explain` API: tokens, recomputed row, model row, max_abs_diff and context."""
        return {
            "model_name": self.model_name,
            "family": self.family,
            "architecture": self.architecture,
            "tokens": list(self.tokens),
            "token_ids": list(self.token_ids),
            "layer": self.layer,
            "head": self.head,
            "position": self.position,
            "query_token": self.tokens[self.position],
            "kv_head": self.kv_head,
            "layer_type": self.layer_type,
            "scale": self.scale,
            "recomputed": _floats(self.recomputed),
            "model": _floats(self.model_row),
            "max_abs_diff": self.max_abs_diff,
            "passed": self.passed,
            "tolerance": self.tolerance,
            "mask": [bool(allowed) for allowed in self.mask],
            "scores": [None if not math.isfinite(x) else x for x in _floats(self.scores_masked)],
            "head_output": _floats(self.head_output),
            "checks": dict(self.checks),
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "notes": list(self.notes),
            "architecture_card": dict(self.card),
        }


def _floats(array: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(array, dtype=np.float64).ravel()]


# --------------------------------------------------------------------------------------------- family anatomy
@dataclass
class _Anatomy:
    """Where a family keeps each piece, and how its attention sublayer is wired."""

    family: str
    base: torch.nn.Module            # the bare transformer (no task head)
    layers: torch.nn.ModuleList
    num_heads: int
    num_key_value_heads: int
    head_dim: int
    hidden_size: int
    norm_placement: str
    word_embeddings: torch.nn.Embedding

    def attention(self, layer: int) -> torch.nn.Module:
        block = self.layers[layer]
        return {
            "gemma3_text": lambda: block.self_attn,
            "gpt2": lambda: block.attn,
            "bert": lambda: block.attention.self,
            "distilbert": lambda: block.attention,
        }[self.family]()

    def output_projection(self, layer: int) -> torch.nn.Module:
        block = self.layers[layer]
        return {
            "gemma3_text": lambda: block.self_attn.o_proj,
            "gpt2": lambda: block.attn.c_proj,
            "bert": lambda: block.attention.output.dense,
            "distilbert": lambda: block.attention.out_lin,
        }[self.family]()

    def layer_type(self, layer: int) -> tuple[str, int | None]:
        """("full" | "sliding:<w>" | "bidirectional", window or None)."""
        if self.family in ("bert", "distilbert"):
            return "bidirectional", None
        window = getattr(self.attention(layer), "sliding_window", None)
        if window:
            return f"sliding:{int(window)}", int(window)
        return "full", None


def model_family(model: Any) -> str:
    """config.model_type of a supported model; UnsupportedError naming the family otherwise."""
    config = getattr(model, "config", None)
    family = getattr(config, "model_type", None) or type(model).__name__
    if family not in SUPPORTED_FAMILIES:
        raise UnsupportedError(
            f"Explain supports Gemma-3, BERT/MiniLM, GPT-2 and DistilBERT; {family} is not supported. "
            "Pick one of those models in the Explain tab."
        )
    if family == "gemma3_text" and getattr(config, "use_bidirectional_attention", False):
        raise UnsupportedError(
            "Explain supports causal Gemma-3 models; this Gemma-3 uses bidirectional attention "
            "(an embedding model) and is not supported."
        )
    if family == "bert" and getattr(config, "is_decoder", False):
        raise UnsupportedError("Explain supports BERT as an encoder; this BERT is configured as a decoder.")
    return family


def _anatomy(model: Any) -> _Anatomy:
    family = model_family(model)
    config = model.config
    if family == "gemma3_text":
        base = model.model if hasattr(model, "model") else model
        return _Anatomy(
            family, base, base.layers, config.num_attention_heads, config.num_key_value_heads,
            config.head_dim, config.hidden_size, "pre+post (sandwich)", base.embed_tokens,
        )
    if family == "gpt2":
        base = model.transformer if hasattr(model, "transformer") else model
        return _Anatomy(
            family, base, base.h, config.n_head, config.n_head, config.n_embd // config.n_head,
            config.n_embd, "pre-norm", base.wte,
        )
    if family == "bert":
        base = model.bert if hasattr(model, "bert") else model
        heads = config.num_attention_heads
        return _Anatomy(
            family, base, base.encoder.layer, heads, heads, config.hidden_size // heads,
            config.hidden_size, "post-norm", base.embeddings.word_embeddings,
        )
    base = model.distilbert if hasattr(model, "distilbert") else model
    return _Anatomy(
        family, base, base.transformer.layer, config.n_heads, config.n_heads, config.dim // config.n_heads,
        config.dim, "post-norm", base.embeddings.word_embeddings,
    )


# --------------------------------------------------------------------------------------------- capture
class _Capture:
    """Forward hooks on one layer: the tensors the recompute starts from and the ones it is checked against."""

    def __init__(self, anatomy: _Anatomy, layer: int) -> None:
        self.tensors: dict[str, Any] = {}
        self._handles: list[Any] = []
        block = anatomy.layers[layer]
        self._pre(anatomy.layers[0], "layer0_input")
        self._pre(block, "layer_input")
        self._pre(anatomy.attention(layer), "attention_input", keep_kwargs=True)
        self._post(anatomy.output_projection(layer), "attention_output")
        if anatomy.family == "gemma3_text":
            self._pre(block.pre_feedforward_layernorm, "block_output")
        elif anatomy.family == "gpt2":
            self._pre(block.ln_2, "block_output")
        elif anatomy.family == "bert":
            self._post(block.attention.output, "block_output")
        else:
            self._post(block.sa_layer_norm, "block_output")

    def _pre(self, module: torch.nn.Module, name: str, keep_kwargs: bool = False) -> None:
        def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            hidden = args[0] if args else kwargs.get("hidden_states")
            self.tensors[name] = hidden.detach()
            if keep_kwargs and kwargs.get("position_embeddings") is not None:
                self.tensors["position_embeddings"] = tuple(t.detach() for t in kwargs["position_embeddings"])

        self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def _post(self, module: torch.nn.Module, name: str) -> None:
        def hook(_module: torch.nn.Module, _args: tuple, output: Any) -> None:
            self.tensors[name] = (output[0] if isinstance(output, tuple) else output).detach()

        self._handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


@contextlib.contextmanager
def _eager_attention(model: Any):
    """Switch the model to eager attention (the only kind that returns weights) and restore it afterwards."""
    previous = getattr(model.config, "_attn_implementation", None)
    switched = previous != "eager"
    if switched:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switched and previous is not None:
            model.set_attn_implementation(previous)


# --------------------------------------------------------------------------------------------- recompute
def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _gemma_rms_norm(x: torch.Tensor, norm: torch.nn.Module) -> torch.Tensor:
    """Gemma's RMSNorm: x / sqrt(mean(x²) + ε) · (1 + w), computed in float32 like the model."""
    normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + norm.eps)
    return (normed * (1.0 + norm.weight.float())).type_as(x)


def _projections(anatomy: _Anatomy, attention: torch.nn.Module, x: torch.Tensor):
    """Q (T, H, d), K (T, Hkv, d), V (T, Hkv, d) from X (T, D) with the module's own weights."""
    tokens = x.shape[0]
    d = anatomy.head_dim
    if anatomy.family == "gpt2":
        fused = torch.addmm(attention.c_attn.bias, x, attention.c_attn.weight)  # (T, 3D): Conv1D is x·W + b
        q, k, v = fused.split(anatomy.hidden_size, dim=-1)                       # each (T, D)
    else:
        names = {"gemma3_text": ("q_proj", "k_proj", "v_proj"), "bert": ("query", "key", "value"),
                 "distilbert": ("q_lin", "k_lin", "v_lin")}[anatomy.family]
        q, k, v = (torch.nn.functional.linear(x, getattr(attention, n).weight, getattr(attention, n).bias)
                   for n in names)
    return (q.view(tokens, -1, d),  # (T, H, d)
            k.view(tokens, -1, d),  # (T, Hkv, d)
            v.view(tokens, -1, d))  # (T, Hkv, d)


def _after_attention(anatomy: _Anatomy, layer: int, projected: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """The residual add and norm that follow the attention sublayer, per family. (T, D) → (T, D)."""
    block = anatomy.layers[layer]
    if anatomy.family == "gemma3_text":
        return residual + _gemma_rms_norm(projected, block.post_attention_layernorm)
    if anatomy.family == "gpt2":
        return residual + projected
    norm = block.attention.output.LayerNorm if anatomy.family == "bert" else block.sa_layer_norm
    return torch.nn.functional.layer_norm(projected + residual, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max().item())


def _relative_diff(recomputed: torch.Tensor, model: torch.Tensor) -> float:
    """max |recomputed − model| / max(1, max |model|): float32 rounding grows with the values' size."""
    return _max_diff(recomputed, model) / max(1.0, float(model.float().abs().max().item()))


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32)


_DISPLAY_CACHE: "weakref.WeakKeyDictionary[Any, OrderedDict[tuple[int, ...], tuple[list[str], list[bool]]]]" = (
    weakref.WeakKeyDictionary())
_DISPLAY_CACHE_SIZE = 32


def _display(tokenizer: Any, ids: list[int]) -> tuple[list[str], list[bool]]:
    """Display tokens, remembered per tokenizer: the same text is explained again for every layer/head switch,
    and building labels for Gemma's 262k-token tokenizer takes seconds (service.tokens serialises it)."""
    key = tuple(ids)
    try:
        per_tokenizer = _DISPLAY_CACHE.setdefault(tokenizer, OrderedDict())
    except TypeError:  # not weak-referenceable: no cache
        return _display_uncached(tokenizer, ids)
    with _DISPLAY_LOCK:
        if key in per_tokenizer:
            per_tokenizer.move_to_end(key)
            labels, special = per_tokenizer[key]
            return list(labels), list(special)
    labels, special = _display_uncached(tokenizer, ids)
    with _DISPLAY_LOCK:
        per_tokenizer[key] = (list(labels), list(special))
        while len(per_tokenizer) > _DISPLAY_CACHE_SIZE:
            per_tokenizer.popitem(last=False)
    return labels, special


_DISPLAY_LOCK = threading.Lock()


def _display_uncached(tokenizer: Any, ids: list[int]) -> tuple[list[str], list[bool]]:
    try:
        from service.tokens import display_tokens
    except ImportError:  # pragma: no cover - the core helper ships service/tokens.py
        special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
        return list(tokenizer.convert_ids_to_tokens(ids)), [i in special_ids for i in ids]
    return display_tokens(tokenizer, ids)


def _check_index(name: str, value: Any, count: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}.")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InvalidInputError(f"{name} must be a whole number, got {value!r}.")
    index = int(value)
    if not 0 <= index < count:
        raise InvalidInputError(f"{name} {index} is out of range: {what} ({0}–{count - 1}).")
    return index


def explain_attention(
    model: Any,
    tokenizer: Any,
    text: str,
    layer: int,
    head: int,
    position: int,
    model_name: str,
    lock: threading.Lock | threading.RLock | None = None,
) -> ExplainResult:
    """Recompute head `head` of layer `layer` for the query token at index `position` and verify it.

    `position` may be negative (Python style: -1 is the last token). Text is cut to MAX_EXPLAIN_TOKENS tokens.
    Raises InvalidInputError for empty text or out-of-range layer/head/position, UnsupportedError for other
    model families. Pass the model's `lock` (or hold it) — the attention implementation is switched while inside.
    """
    anatomy = _anatomy(model)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("Type a sentence to explain: the text is empty.")
    num_layers = len(anatomy.layers)
    layer = _check_index("layer", layer, num_layers, f"the model has {num_layers} layers")
    head = _check_index("head", head, anatomy.num_heads, f"each layer has {anatomy.num_heads} heads")

    encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=MAX_EXPLAIN_TOKENS)
    token_ids = [int(i) for i in encoded["input_ids"][0].tolist()]
    count = len(token_ids)
    if count == 0:
        raise InvalidInputError("The text produced no tokens; type a sentence to explain.")
    if isinstance(position, (int, np.integer)) and not isinstance(position, bool) and -count <= position < 0:
        position = count + int(position)
    position = _check_index("position", position, count, f"the text has {count} tokens")
    notes: list[str] = []
    full_count = len(tokenizer(text, truncation=False)["input_ids"])
    if full_count > count:
        notes.append(f"The text was cut to its first {count} tokens (of {full_count}) for this explanation.")

    device = next(model.parameters()).device
    inputs = {name: tensor.to(device) for name, tensor in encoded.items()
              if name in ("input_ids", "attention_mask", "token_type_ids")}
    if anatomy.family == "distilbert":
        inputs.pop("token_type_ids", None)
    forward_kwargs: dict[str, Any] = {"output_attentions": True}
    if anatomy.family in ("gemma3_text", "gpt2"):
        forward_kwargs["use_cache"] = False
        if "logits_to_keep" in _forward_parameters(model):
            forward_kwargs["logits_to_keep"] = 1

    capture = _Capture(anatomy, layer)
    guard = lock if lock is not None else contextlib.nullcontext()
    try:
        with guard, torch.inference_mode(), _eager_attention(model):
            was_training = model.training
            model.eval()
            try:
                outputs = model(**inputs, **forward_kwargs)
            finally:
                model.train(was_training)
            attentions = outputs.attentions
            if not attentions:
                raise UnsupportedError(f"{model_name} returned no attention weights even in eager mode.")
            model_rows = attentions[layer][0, :, position, :].detach()  # (H, T)
            capture.tensors["input_ids"] = inputs["input_ids"][0]      # (T,)
            result = _recompute(anatomy, capture.tensors, layer, head, position, model_rows)
    finally:
        capture.remove()

    tokens, special = _display(tokenizer, token_ids)
    config = model.config
    embedding_scale = None
    if anatomy.family == "gemma3_text":
        embedding_scale = float(anatomy.word_embeddings.scalar_embed_scale) if hasattr(
            anatomy.word_embeddings, "scalar_embed_scale") else float(anatomy.word_embeddings.embed_scale)
        notes.append(f"Gemma multiplies every embedding row by √{anatomy.hidden_size} ≈ {embedding_scale:.3f}.")
    layer_type, window = anatomy.layer_type(layer)
    if window is not None:
        notes.append(f"Layer {layer} uses a sliding window of {window}: token {position} sees keys "
                     f"{max(0, position - window + 1)}–{position}.")
    if anatomy.num_key_value_heads < anatomy.num_heads:
        group = anatomy.num_heads // anatomy.num_key_value_heads
        notes.append(f"Grouped-query attention: {group} query heads share each key/value head; "
                     f"head {head} uses key/value head {head // group}.")
    if anatomy.family == "gpt2" and getattr(config, "scale_attn_by_inverse_layer_idx", False):
        notes.append(f"This GPT-2 also divides scores by the layer number + 1 ({layer + 1}).")

    d, D, H = anatomy.head_dim, anatomy.hidden_size, anatomy.num_heads
    shapes = {
        "X": [count, D], "W_Q": [D, d], "W_K": [D, d], "W_V": [D, d], "Q": [count, d], "K": [count, d],
        "V": [count, d], "scores": [count], "attention_row": [count], "head_output": [d],
        "concat": [H * d], "W_O": [H * d, D], "attention_output": [D],
    }
    max_abs_diff = result.pop("max_abs_diff")
    return ExplainResult(
        model_name=model_name, family=anatomy.family,
        architecture="decoder-only" if anatomy.family in ("gemma3_text", "gpt2") else "encoder-only",
        text=text, tokens=tokens, token_ids=token_ids, special=special, layer=layer, head=head, position=position,
        kv_head=head // (anatomy.num_heads // anatomy.num_key_value_heads), num_layers=num_layers,
        num_heads=H, num_key_value_heads=anatomy.num_key_value_heads, head_dim=d, hidden_size=D,
        layer_type=layer_type, scale=float(anatomy.attention(layer).scaling), embedding_scale=embedding_scale,
        norm_placement=anatomy.norm_placement, max_abs_diff=max_abs_diff,
        passed=bool(max_abs_diff < TOLERANCE), shapes=shapes, notes=notes,
        uses_rope=anatomy.family == "gemma3_text", uses_qk_norm=anatomy.family == "gemma3_text",
        card=architecture_card(model), **result,
    )


def _forward_parameters(model: Any) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):  # pragma: no cover
        return set()


def _recompute(anatomy: _Anatomy, captured: dict[str, Any], layer: int, head: int, position: int,
               model_rows: torch.Tensor) -> dict[str, Any]:
    """The hand computation, from the captured input of the attention module and the module's own weights."""
    missing = {"layer0_input", "layer_input", "attention_input", "attention_output", "block_output"} - set(captured)
    if missing:
        raise UnsupportedError(f"Could not capture {', '.join(sorted(missing))} from this model's forward pass.")
    attention = anatomy.attention(layer)
    x = captured["attention_input"][0]                       # (T, D)
    tokens = x.shape[0]
    group = anatomy.num_heads // anatomy.num_key_value_heads
    kv_head = head // group
    checks: dict[str, float] = {}

    q_all, k_all, v_all = _projections(anatomy, attention, x)  # (T, H, d), (T, Hkv, d), (T, Hkv, d)
    query_raw, key_raw = q_all[:, head], k_all[:, kv_head]     # (T, d) each
    query_normed = key_normed = None
    if anatomy.family == "gemma3_text":
        q_all = _gemma_rms_norm(q_all, attention.q_norm)
        k_all = _gemma_rms_norm(k_all, attention.k_norm)
        query_normed, key_normed = q_all[:, head], k_all[:, kv_head]
        cos, sin = captured["position_embeddings"]          # (1, T, d) each
        cos, sin = cos[0].unsqueeze(1), sin[0].unsqueeze(1)  # (T, 1, d): broadcast over heads
        q_all = q_all * cos + _rotate_half(q_all) * sin
        k_all = k_all * cos + _rotate_half(k_all) * sin

    # Scores for every query, in the model's own layout and op order (matmul, then × scale; softmax in float32
    # for Gemma, in the model's dtype for the others), so bfloat16 models reproduce bit for bit.
    q_heads = q_all.transpose(0, 1)                                           # (H, T, d)
    k_heads = k_all.transpose(0, 1).repeat_interleave(group, dim=0)           # (H, T, d): a KV head per `group` heads
    v_heads = v_all.transpose(0, 1).repeat_interleave(group, dim=0)           # (H, T, d)
    all_scores = torch.matmul(q_heads.unsqueeze(0), k_heads.unsqueeze(0).transpose(2, 3)) * attention.scaling
    # all_scores: (batch, head, query_pos, key_pos)
    scores = all_scores[0, :, position, :]                                    # (H, T): query `position` vs every key

    keys = torch.arange(tokens, device=x.device)
    layer_type, window = anatomy.layer_type(layer)
    allowed = torch.ones(tokens, dtype=torch.bool, device=x.device)  # (T,)
    if layer_type != "bidirectional":
        allowed &= keys <= position
    if window is not None:
        allowed &= keys > position - window
    masked = scores.masked_fill(~allowed, float("-inf"))     # (H, T)
    if anatomy.family == "gemma3_text":
        rows = torch.softmax(masked, dim=-1, dtype=torch.float32).to(x.dtype)  # (H, T)
    else:
        rows = torch.softmax(masked, dim=-1)                  # (H, T)

    max_abs_diff = _max_diff(rows[head], model_rows[head])
    checks["attention_row"] = max_abs_diff
    checks["all_heads_at_position"] = _max_diff(rows, model_rows)

    head_outputs = torch.matmul(rows.unsqueeze(1), v_heads)[:, 0]  # (H, 1, T)·(H, T, d) → (H, d)
    concat = head_outputs.reshape(-1)                          # (H·d,)
    projection = anatomy.output_projection(layer)
    if anatomy.family == "gpt2":
        projected = concat @ projection.weight + projection.bias  # Conv1D: (H·d,) · (H·d, D) → (D,)
    else:
        projected = torch.nn.functional.linear(concat, projection.weight, projection.bias)  # (D,)
    checks["attention_output"] = _relative_diff(projected, captured["attention_output"][0, position])

    residual = captured["layer_input"][0, position]          # (D,)
    block_output = _after_attention(anatomy, layer, projected.unsqueeze(0), residual.unsqueeze(0))[0]  # (D,)
    checks["after_residual_and_norm"] = _relative_diff(block_output, captured["block_output"][0, position])

    token_embeddings = anatomy.word_embeddings.weight[captured["input_ids"]]  # (T, D) rows of the table
    if anatomy.family == "gemma3_text":
        checks["embedding_scale"] = _relative_diff(token_embeddings * anatomy.word_embeddings.embed_scale,
                                              captured["layer0_input"][0])
    if anatomy.family in ("gemma3_text", "gpt2"):
        input_norm = anatomy.layers[layer].input_layernorm if anatomy.family == "gemma3_text" else anatomy.layers[layer].ln_1
        if anatomy.family == "gemma3_text":
            normed = _gemma_rms_norm(captured["layer_input"][0], input_norm)
        else:
            normed = torch.nn.functional.layer_norm(captured["layer_input"][0], input_norm.normalized_shape,
                                                    input_norm.weight, input_norm.bias, input_norm.eps)
        checks["input_norm"] = _relative_diff(normed, x)

    return {
        "token_embeddings": _numpy(token_embeddings),
        "input_embeddings": _numpy(captured["layer0_input"][0]),
        "layer_input": _numpy(captured["layer_input"][0]),
        "attention_input": _numpy(x),
        "query_raw": _numpy(query_raw), "key_raw": _numpy(key_raw), "value": _numpy(v_all[:, kv_head]),
        "query_normed": None if query_normed is None else _numpy(query_normed),
        "key_normed": None if key_normed is None else _numpy(key_normed),
        "query": _numpy(q_all[:, head]), "key": _numpy(k_all[:, kv_head]),
        "scores_raw": _numpy(scores[head]), "mask": allowed.cpu().numpy(), "scores_masked": _numpy(masked[head]),
        "recomputed": _numpy(rows[head]), "model_row": _numpy(model_rows[head]),
        "head_output": _numpy(head_outputs[head]), "heads_concat": _numpy(concat),
        "attention_output": _numpy(projected), "residual": _numpy(residual), "block_output": _numpy(block_output),
        "max_abs_diff": max_abs_diff, "checks": checks,
    }


# --------------------------------------------------------------------------------------------- architecture card
def architecture_card(model: Any) -> dict[str, Any]:
    """A JSON-ready description of the loaded model, generated from its config (see viz.explain for the diagram)."""
    anatomy = _anatomy(model)
    config = model.config
    family = anatomy.family
    layer_types = [anatomy.layer_type(i)[0] for i in range(len(anatomy.layers))]
    sliding = [t for t in layer_types if t.startswith("sliding")]
    card: dict[str, Any] = {
        "family": FAMILY_NAMES[family],
        "model_type": family,
        "architecture": "decoder-only" if family in ("gemma3_text", "gpt2") else "encoder-only",
        "num_layers": len(anatomy.layers),
        "num_heads": anatomy.num_heads,
        "num_key_value_heads": anatomy.num_key_value_heads,
        "head_dim": anatomy.head_dim,
        "hidden_size": anatomy.hidden_size,
        "vocab_size": int(config.vocab_size),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "layer_types": layer_types,
        "norm_placement": anatomy.norm_placement,
        "attention_scale": float(anatomy.attention(0).scaling),
        "uses_rope": family == "gemma3_text",
        "uses_qk_norm": family == "gemma3_text",
        "tied_embeddings": bool(getattr(config, "tie_word_embeddings", False))
        and getattr(model, "get_output_embeddings", lambda: None)() is not None,
    }
    if family == "gemma3_text":
        rope = getattr(config, "rope_parameters", None) or {}
        thetas = {kind: params.get("rope_theta") for kind, params in rope.items() if isinstance(params, dict)}
        card.update(
            ffn_size=int(config.intermediate_size),
            mlp=f"gated {config.hidden_activation} (gate ⊙ up → down)",
            positional="RoPE (rotary) on q and k" + "".join(
                f"; θ={theta:,.0f} on {kind.replace('_attention', '')} layers" for kind, theta in thetas.items()
                if theta),
            norm="RMSNorm, weight stored as (1 + w); before and after each sublayer, plus q/k norms",
            attention=(f"causal; sliding window {config.sliding_window} on {len(sliding)} of "
                       f"{len(layer_types)} layers" if sliding else "causal on every layer"),
            embedding_scale=f"× √{anatomy.hidden_size} ≈ {math.sqrt(anatomy.hidden_size):.2f}",
            grouped_query=anatomy.num_key_value_heads < anatomy.num_heads,
        )
    elif family == "gpt2":
        card.update(
            ffn_size=int(config.n_inner or 4 * config.n_embd),
            mlp=f"{config.activation_function} MLP (up → down)",
            positional=f"learned absolute positions ({config.n_positions})",
            norm="LayerNorm before each sublayer (pre-norm) and a final LayerNorm",
            attention="causal on every layer", embedding_scale=None, grouped_query=False,
        )
    elif family == "bert":
        card.update(
            ffn_size=int(config.intermediate_size),
            mlp=f"{config.hidden_act} MLP (up → down)",
            positional=f"learned absolute positions ({config.max_position_embeddings}) + segment embeddings",
            norm="LayerNorm after each residual add (post-norm) and on the embeddings",
            attention="bidirectional: every token sees every token", embedding_scale=None, grouped_query=False,
        )
    else:
        card.update(
            ffn_size=int(config.hidden_dim),
            mlp=f"{config.activation} MLP (up → down)",
            positional=("fixed sinusoidal positions" if config.sinusoidal_pos_embds
                        else f"learned absolute positions ({config.max_position_embeddings})"),
            norm="LayerNorm after each residual add (post-norm) and on the embeddings",
            attention="bidirectional: every token sees every token", embedding_scale=None, grouped_query=False,
        )
    return card
