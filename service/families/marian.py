"""Marian (config.model_type "marian"): encoder-decoder, post-norm LayerNorm, sinusoidal positions, √D embeddings.

Members that read one stack take `side="encoder" | "decoder"` (default: the decoder, whose output is unembedded).
Cross-attention (decoder queries, encoder keys and values) has its own accessors. The Explain walk-through does not
cover this family (`explainable = False`); the accessors serve per-layer features such as the logit lens.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from service.errors import InvalidInputError
from service.families.base import (FamilyAdapter, FamilyFacts, LAYER_NORM_FORMULA, layer_norm, linear, positions,
                                   split_heads)

SIDES = ("encoder", "decoder")


def _check_side(side: str) -> str:
    if side not in SIDES:
        raise InvalidInputError(f"Marian has an encoder and a decoder; side must be one of {SIDES}, not {side!r}.")
    return side


class MarianAdapter(FamilyAdapter):
    model_type = "marian"
    facts = FamilyFacts(
        model_type="marian", name="Marian", short_name="Marian", architecture="encoder-decoder",
        norm_name="LayerNorm", norm_formula=LAYER_NORM_FORMULA, norm_placement="post-norm", positional="sinusoidal",
    )
    explainable = False
    input_names = ("input_ids", "attention_mask")

    # --- sizes --------------------------------------------------------------------------------------
    def num_heads(self, config: Any, side: str = "decoder") -> int:
        return int(getattr(config, f"{_check_side(side)}_attention_heads"))

    def key_value_heads(self, config: Any, side: str = "decoder") -> int:
        return self.num_heads(config, side)

    def head_dim(self, config: Any, side: str = "decoder") -> int:
        return self.hidden_size(config) // self.num_heads(config, side)

    def hidden_size(self, config: Any) -> int:
        return int(config.d_model)

    def layer_types(self, config: Any, num_layers: int, side: str = "decoder") -> list[str]:
        return ["full" if _check_side(side) == "decoder" else "bidirectional"] * num_layers

    # --- where things are -----------------------------------------------------------------------------
    def base_model(self, model: Any) -> torch.nn.Module:
        return model.model if hasattr(model, "model") else model

    def stack(self, model: Any, side: str = "decoder") -> torch.nn.Module:
        """The MarianEncoder or MarianDecoder."""
        return getattr(self.base_model(model), _check_side(side))

    def layers(self, model: Any, side: str = "decoder") -> torch.nn.ModuleList:
        return self.stack(model, side).layers

    def word_embeddings(self, model: Any, side: str = "decoder") -> torch.nn.Embedding:
        return self.stack(model, side).embed_tokens

    def embedding_scale(self, model: Any, side: str = "decoder") -> float | None:
        scale = float(self.stack(model, side).embed_scale)
        return None if scale == 1.0 else scale

    def position_embeddings(self, model: Any, side: str = "decoder") -> torch.nn.Module:
        return self.stack(model, side).embed_positions  # fixed sinusoidal table (P, D)

    def self_attention(self, model: Any, layer: int, side: str = "decoder") -> torch.nn.Module:
        return self.layers(model, side)[layer].self_attn

    def attention_scale(self, model: Any, layer: int, side: str = "decoder") -> float:
        return float(self.self_attention(model, layer, side).scaling)

    def post_attention_norm(self, model: Any, layer: int, side: str = "decoder") -> torch.nn.Module:
        return self.layers(model, side)[layer].self_attn_layer_norm

    def output_projection(self, model: Any, layer: int, side: str = "decoder") -> torch.nn.Module:
        return self.self_attention(model, layer, side).out_proj

    def after_attention_tap(self, model: Any, layer: int, side: str = "decoder") -> tuple[torch.nn.Module, str]:
        return self.post_attention_norm(model, layer, side), "post"

    def cross_attention(self, model: Any, layer: int) -> torch.nn.Module:
        """Decoder layer `layer`'s attention over the encoder's output (queries: decoder, keys/values: encoder)."""
        return self.layers(model, "decoder")[layer].encoder_attn

    def cross_attention_norm(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model, "decoder")[layer].encoder_attn_layer_norm

    def unembedding(self, model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        """MarianMTModel's head: lm_head (tied to the decoder embeddings) plus final_logits_bias."""
        head = super().unembedding(model)
        bias = getattr(model, "final_logits_bias", None)

        def lm_head(hidden: torch.Tensor) -> torch.Tensor:
            logits = head(hidden)  # (…, V)
            return logits if bias is None else logits + bias[0]

        return lm_head

    def tied_embeddings(self, model: Any) -> bool:
        head = getattr(model, "get_output_embeddings", lambda: None)()
        return head is not None and head.weight is self.word_embeddings(model, "decoder").weight

    # --- computations by hand -----------------------------------------------------------------------
    def project_qkv(self, model: Any, layer: int, x: torch.Tensor, side: str = "decoder"):
        attention = self.self_attention(model, layer, side)
        d = self.head_dim(model.config, side)
        return (split_heads(linear(attention.q_proj, x), d),  # (T, H, d)
                split_heads(linear(attention.k_proj, x), d),  # (T, H, d)
                split_heads(linear(attention.v_proj, x), d))  # (T, H, d)

    def project_cross_qkv(self, model: Any, layer: int, decoder_x: torch.Tensor, encoder_output: torch.Tensor):
        """Decoder states (T, D) and encoder output (S, D) → Q (T, H, d), K (S, H, d), V (S, H, d)."""
        attention = self.cross_attention(model, layer)
        d = self.head_dim(model.config, "decoder")
        return (split_heads(linear(attention.q_proj, decoder_x), d),       # (T, H, d)
                split_heads(linear(attention.k_proj, encoder_output), d),  # (S, H, d)
                split_heads(linear(attention.v_proj, encoder_output), d))  # (S, H, d)

    def project_output(self, model: Any, layer: int, concat: torch.Tensor, side: str = "decoder") -> torch.Tensor:
        return linear(self.output_projection(model, layer, side), concat)  # (…, H·d) → (…, D)

    def after_attention(self, model: Any, layer: int, attention_output: torch.Tensor, residual: torch.Tensor,
                        side: str = "decoder") -> torch.Tensor:
        return layer_norm(self.post_attention_norm(model, layer, side), attention_output + residual)  # (T, D)

    def embed(self, model: Any, input_ids: torch.Tensor, side: str = "decoder") -> torch.Tensor:
        stack = self.stack(model, side)
        rows = stack.embed_tokens.weight[input_ids] * stack.embed_scale                # (T, D)
        return rows + positions(stack.embed_positions, len(input_ids))               # (T, D)

    def forward_kwargs(self, model: Any) -> dict[str, Any]:
        return {"output_attentions": True, "use_cache": False}

    def describe(self, model: Any) -> dict[str, Any]:
        config = model.config
        return {
            "ffn_size": int(config.decoder_ffn_dim),
            "mlp": f"{config.activation_function} MLP (up → down)",
            "positional": f"fixed sinusoidal positions ({config.max_position_embeddings})",
            "norm": "LayerNorm after each residual add (post-norm)",
            "attention": ("encoder bidirectional; decoder causal, plus cross-attention over the encoder "
                          f"({config.encoder_layers} encoder and {config.decoder_layers} decoder layers)"),
            "embedding_scale": (f"× √{config.d_model}" if getattr(config, "scale_embedding", False) else None),
            "grouped_query": False,
        }

    def _lm_class(self) -> str:
        return "MarianMTModel"
