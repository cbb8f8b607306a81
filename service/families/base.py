"""The model-family adapter interface: where a family keeps each part of a transformer, in one shared vocabulary."""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from service.errors import UnsupportedError


@dataclass(frozen=True)
class FamilyFacts:
    """What a family does, as plain data (views and JSON read these; they never need torch).

    model_type          config.model_type, e.g. "gemma3_text"
    name                for titles and prose: "Gemma 3", "GPT-2", "BERT / MiniLM"
    short_name          in sentences that list families: "Gemma-3", "BERT/MiniLM"
    architecture        "decoder-only" | "encoder-only" | "encoder-decoder"
    norm_name           "RMSNorm" | "LayerNorm"
    norm_formula        LaTeX of Norm(h), e.g. r"\\frac{h-\\mu}{\\sigma}\\odot w + b"
    norm_placement      "pre-norm" | "post-norm" | "pre+post (sandwich)"
    positional          "rope" (rotary, inside attention) | "learned" | "sinusoidal" (both added to the embeddings)
    segment_embeddings  a segment (token type) vector is added to the embeddings too (BERT)
    embedding_norm      the summed embeddings go through a norm before layer 0 (BERT, DistilBERT)
    uses_qk_norm        each query and key is normalised (per head) before the scores (Gemma 3)
    fused_qkv           Q, K and V come out of one fused projection that is split in three (GPT-2's c_attn)
    """

    model_type: str
    name: str
    short_name: str
    architecture: str
    norm_name: str
    norm_formula: str
    norm_placement: str
    positional: str
    segment_embeddings: bool = False
    embedding_norm: bool = False
    uses_qk_norm: bool = False
    fused_qkv: bool = False

    @property
    def uses_rope(self) -> bool:
        return self.positional == "rope"

    @property
    def causal(self) -> bool:
        return self.architecture == "decoder-only"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "uses_rope": self.uses_rope}


LAYER_NORM_FORMULA = r"\frac{h-\mu}{\sqrt{\sigma^2+\epsilon}}\odot w + b"


def parse_layer_type(kind: str) -> tuple[bool, int | None]:
    """A layer type ("full" | "sliding:<window>" | "bidirectional") → (causal, window or None)."""
    if kind == "bidirectional":
        return False, None
    if kind.startswith("sliding:"):
        return True, int(kind.split(":", 1)[1])
    return True, None


def text_config(config: Any) -> Any:
    """The text part of a config (multimodal configs nest it); the config itself otherwise."""
    return getattr(config, "get_text_config", lambda: config)()


def layer_norm(norm: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm with the module's own weight, bias and ε, computed by hand (functional): (..., D) → (..., D)."""
    return torch.nn.functional.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def linear(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x · Wᵀ + b with an nn.Linear's own weights: (..., in) → (..., out)."""
    return torch.nn.functional.linear(x, module.weight, module.bias)


def split_heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(T, heads·d) → (T, heads, d): head h owns columns h·d … (h+1)·d − 1 of a projection."""
    return x.view(x.shape[0], -1, head_dim)  # (T, head, d)


class FamilyAdapter:
    """How one model family is wired, so that the rest of the code never asks "which family?".

    An adapter holds no model: every accessor takes the loaded model (any head: bare, causal LM, masked LM, …)
    or its config. Shapes: T tokens, D hidden size, H query heads, Hkv key/value heads, d head dim, V vocabulary.
    Encoder-decoder adapters (Marian) also take `side="encoder" | "decoder"` where a member reads one stack.

    Class attributes
        model_type            config.model_type this adapter serves (the registry key)
        facts                 FamilyFacts: the descriptive facts (names, norm placement, positional scheme, …)
        explainable           the Explain walk-through's recompute covers this family
        input_names           tokenizer outputs the model's forward accepts
        softmax_in_float32    the model's eager attention runs softmax in float32 (else in the model's dtype)
        grouped_eager         its eager kernel is transformers' standard one (scaled q·kᵀ, soft-cap, additive mask,
                              float32 softmax), so capture may run it grouped (service/attention/grouped_eager.py)

    Checks and sizes
        check(config)                      raise UnsupportedError for a variant this adapter does not cover
        num_heads(config) -> H             query heads per layer
        key_value_heads(config) -> Hkv     key/value heads (== H without grouped-query attention)
        head_dim(config) -> d
        hidden_size(config) -> D
        layer_types(config, num_layers)    per layer "full" (causal) | "sliding:<window>" | "bidirectional"

    Where things are
        base_model(model)                  the bare transformer, without its task head
        layers(model)                      nn.ModuleList of blocks; len(...) = number of layers
        word_embeddings(model)             nn.Embedding, weight (V, D): rows before any scaling
        embedding_scale(model)             the factor rows are multiplied by (Gemma: √D), or None
        position_embeddings(model)         the learned / sinusoidal table (P, D) added to the rows, or None (RoPE)
        self_attention(model, layer)       the attention module (hooks: its input is X; RoPE models pass
                                           `position_embeddings` = (cos, sin), each (1, T, d), as a keyword)
        attention_scale(model, layer)      the factor the scores q·k are multiplied by
        input_norm(model, layer)           the norm before attention (pre-norm / sandwich), or None (post-norm)
        post_attention_norm(model, layer)  the norm right after attention (sandwich) or after the residual add
                                           (post-norm), or None (pre-norm: the next norm belongs to the MLP)
        qk_norms(model, layer)             (q_norm, k_norm) applied per head before RoPE, or None
        output_projection(model, layer)    the W_O module
        after_attention_tap(model, layer)  (module, "pre" | "post"): a hook there sees the block's hidden state
                                           (T, D) right after the attention sublayer's residual add (and norm)
        final_norm(model)                  the norm applied to the last layer's output before unembedding
                                           (nn.Identity for post-norm models, whose last layer ends in a norm)
        unembedding(model)                 callable (…, D) → (…, V) (the LM head; Gemma and GPT-2 tie it to the
                                           embedding table); UnsupportedError when the model has no LM head

    Computations by hand, with the model's own weights (what the Explain recompute calls)
        project_qkv(model, layer, x)       X (T, D) → Q (T, H, d), K (T, Hkv, d), V (T, Hkv, d), biases included
        project_output(model, layer, c)    concat of heads (…, H·d) → (…, D): c W_O + b
        apply_norm(norm, x)                (…, D) → (…, D) exactly as the family's norm computes it
        after_attention(model, layer, attention_output, residual)
                                           (T, D), (T, D) → (T, D): the residual add and the norm(s) around it
        embed(model, input_ids)            ids (T,) → what enters layer 0 (T, D): rows × scale, + positions
                                           (+ segment 0), then the embedding norm, as the family does it
        logits(model, hidden)              last layer's output (…, D) → the model's logits (…, V):
                                           final_norm, then unembedding (then Gemma's soft-capping, if set)
        forward_kwargs(model)              extra keywords for one eager forward pass that returns attention
        describe(model)                    the family's lines of the architecture card (JSON-ready dict)
        notes(model, layer)                family quirks worth one sentence in the walk-through (list of str)
    """

    model_type: str = ""
    facts: FamilyFacts
    explainable: bool = True
    input_names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
    softmax_in_float32: bool = False
    grouped_eager: bool = False

    # --- checks and sizes ------------------------------------------------------------------------
    def check(self, config: Any) -> None:
        """Raise UnsupportedError for a variant of the family this adapter does not cover."""

    def num_heads(self, config: Any) -> int:
        raise NotImplementedError

    def key_value_heads(self, config: Any) -> int:
        return self.num_heads(config)

    def head_dim(self, config: Any) -> int:
        return self.hidden_size(config) // self.num_heads(config)

    def hidden_size(self, config: Any) -> int:
        raise NotImplementedError

    def layer_types(self, config: Any, num_layers: int) -> list[str]:
        kind = "full" if self.facts.causal else "bidirectional"
        return [kind] * num_layers

    # --- where things are -------------------------------------------------------------------------
    def base_model(self, model: Any) -> torch.nn.Module:
        raise NotImplementedError

    def layers(self, model: Any) -> torch.nn.ModuleList:
        raise NotImplementedError

    def word_embeddings(self, model: Any) -> torch.nn.Embedding:
        raise NotImplementedError

    def embedding_scale(self, model: Any) -> float | None:
        return None

    def position_embeddings(self, model: Any) -> torch.nn.Module | None:
        return None

    def self_attention(self, model: Any, layer: int) -> torch.nn.Module:
        raise NotImplementedError

    def attention_scale(self, model: Any, layer: int) -> float:
        return float(self.self_attention(model, layer).scaling)

    def input_norm(self, model: Any, layer: int) -> torch.nn.Module | None:
        return None

    def post_attention_norm(self, model: Any, layer: int) -> torch.nn.Module | None:
        return None

    def qk_norms(self, model: Any, layer: int) -> tuple[torch.nn.Module, torch.nn.Module] | None:
        return None

    def output_projection(self, model: Any, layer: int) -> torch.nn.Module:
        raise NotImplementedError

    def after_attention_tap(self, model: Any, layer: int) -> tuple[torch.nn.Module, str]:
        raise NotImplementedError

    def final_norm(self, model: Any) -> torch.nn.Module:
        return torch.nn.Identity()

    def unembedding(self, model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        head = getattr(model, "get_output_embeddings", lambda: None)()
        if head is None:
            raise UnsupportedError(
                f"This {type(model).__name__} has no language-model head to unembed with; "
                f"load the family's LM model (for example {self._lm_class()}) instead."
            )
        return head

    def tied_embeddings(self, model: Any) -> bool:
        """True when the unembedding reuses the embedding table (same tensor)."""
        head = getattr(model, "get_output_embeddings", lambda: None)()
        return head is not None and head.weight is self.word_embeddings(model).weight

    # --- computations by hand ---------------------------------------------------------------------
    def project_qkv(self, model: Any, layer: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def project_output(self, model: Any, layer: int, concat: torch.Tensor) -> torch.Tensor:
        return linear(self.output_projection(model, layer), concat)  # (…, H·d) → (…, D)

    def apply_norm(self, norm: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(norm, x)

    def after_attention(self, model: Any, layer: int, attention_output: torch.Tensor,
                        residual: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed(self, model: Any, input_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, model: Any, hidden: torch.Tensor) -> torch.Tensor:
        """The last layer's output (…, D) → logits (…, V), as the model's own head computes them."""
        return self.unembedding(model)(self.final_norm(model)(hidden))

    def forward_kwargs(self, model: Any) -> dict[str, Any]:
        """Keywords for one eager forward pass with output_attentions: decoders skip the KV cache and all but the
        last position's logits (a long text would otherwise materialise T × V logits)."""
        kwargs: dict[str, Any] = {"output_attentions": True}
        if self.facts.causal:
            kwargs["use_cache"] = False
            if "logits_to_keep" in _forward_parameters(model):
                kwargs["logits_to_keep"] = 1
        return kwargs

    def describe(self, model: Any) -> dict[str, Any]:
        """The family's own lines of the architecture card: ffn_size, mlp, positional, norm, attention, …"""
        return {}

    def notes(self, model: Any, layer: int) -> list[str]:
        return []

    def _lm_class(self) -> str:
        return "the family's *LMHeadModel / *ForCausalLM / *ForMaskedLM class"


def _forward_parameters(model: Any) -> set[str]:
    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):  # pragma: no cover
        return set()


def positions(table: torch.nn.Module, count: int) -> torch.Tensor:
    """Rows 0 … count−1 of a position table: (count, D)."""
    return table.weight[:count]


def sqrt_label(hidden_size: int) -> str:
    """'× √640 ≈ 25.30' for an embedding scale of √D."""
    return f"× √{hidden_size} ≈ {math.sqrt(hidden_size):.2f}"
