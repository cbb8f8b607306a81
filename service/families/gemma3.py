"""Gemma 3 (config.model_type "gemma3_text"): RMSNorm around each sublayer, q/k norm, RoPE, GQA, √D scale."""

from __future__ import annotations

from typing import Any

import torch

from service.errors import UnsupportedError
from service.families.base import FamilyAdapter, FamilyFacts, linear, split_heads, sqrt_label, text_config


def rms_norm(norm: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Gemma's RMSNorm: x / sqrt(mean(x²) + ε) · (1 + w), in float32 like the model. (…, D) → (…, D)."""
    normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + norm.eps)
    return (normed * (1.0 + norm.weight.float())).type_as(x)


class Gemma3Adapter(FamilyAdapter):
    model_type = "gemma3_text"
    facts = FamilyFacts(
        model_type="gemma3_text", name="Gemma 3", short_name="Gemma-3", architecture="decoder-only",
        norm_name="RMSNorm", norm_formula=r"\frac{h}{\sqrt{\overline{h^2}+\epsilon}}\odot(1+w)",
        norm_placement="pre+post (sandwich)", positional="rope", uses_qk_norm=True,
    )
    softmax_in_float32 = True
    grouped_eager = True

    def check(self, config: Any) -> None:
        if getattr(config, "use_bidirectional_attention", False):
            raise UnsupportedError(
                "Attention Atlas supports causal Gemma-3 models; this Gemma-3 uses bidirectional attention "
                "(an embedding model) and is not supported."
            )

    def num_heads(self, config: Any) -> int:
        return int(config.num_attention_heads)

    def key_value_heads(self, config: Any) -> int:
        return int(config.num_key_value_heads)

    def head_dim(self, config: Any) -> int:
        return int(config.head_dim)  # not hidden/heads: Gemma-3-270M has 4 heads of 256 on a 640 stream

    def hidden_size(self, config: Any) -> int:
        return int(config.hidden_size)

    def layer_types(self, config: Any, num_layers: int) -> list[str]:
        config = text_config(config)
        if getattr(config, "use_bidirectional_attention", False):
            return ["bidirectional"] * num_layers
        types = getattr(config, "layer_types", None) or ["full_attention"] * num_layers
        return [f"sliding:{int(config.sliding_window)}" if "sliding" in str(kind) else "full"
                for kind in types][:num_layers]

    def base_model(self, model: Any) -> torch.nn.Module:
        return model.model if hasattr(model, "model") else model

    def layers(self, model: Any) -> torch.nn.ModuleList:
        return self.base_model(model).layers

    def word_embeddings(self, model: Any) -> torch.nn.Embedding:
        return self.base_model(model).embed_tokens

    def embedding_scale(self, model: Any) -> float | None:
        table = self.word_embeddings(model)
        if hasattr(table, "scalar_embed_scale"):
            return float(table.scalar_embed_scale)
        return float(table.embed_scale)

    def self_attention(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].self_attn

    def input_norm(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].input_layernorm

    def post_attention_norm(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].post_attention_layernorm

    def qk_norms(self, model: Any, layer: int) -> tuple[torch.nn.Module, torch.nn.Module]:
        attention = self.self_attention(model, layer)
        return attention.q_norm, attention.k_norm

    def output_projection(self, model: Any, layer: int) -> torch.nn.Module:
        return self.self_attention(model, layer).o_proj

    def after_attention_tap(self, model: Any, layer: int) -> tuple[torch.nn.Module, str]:
        return self.layers(model)[layer].pre_feedforward_layernorm, "pre"

    def final_norm(self, model: Any) -> torch.nn.Module:
        return self.base_model(model).norm

    def project_qkv(self, model: Any, layer: int, x: torch.Tensor):
        attention = self.self_attention(model, layer)
        d = self.head_dim(model.config)
        return (split_heads(linear(attention.q_proj, x), d),   # (T, H, d)
                split_heads(linear(attention.k_proj, x), d),   # (T, Hkv, d)
                split_heads(linear(attention.v_proj, x), d))   # (T, Hkv, d)

    def apply_norm(self, norm: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(norm, x)

    def after_attention(self, model: Any, layer: int, attention_output: torch.Tensor,
                        residual: torch.Tensor) -> torch.Tensor:
        return residual + rms_norm(self.post_attention_norm(model, layer), attention_output)  # (T, D)

    def embed(self, model: Any, input_ids: torch.Tensor) -> torch.Tensor:
        table = self.word_embeddings(model)
        return table.weight[input_ids] * table.embed_scale.to(table.weight.dtype)  # (T, D), as the model scales

    def logits(self, model: Any, hidden: torch.Tensor) -> torch.Tensor:
        logits = super().logits(model, hidden)  # (…, V)
        cap = getattr(model.config, "final_logit_softcapping", None)
        return torch.tanh(logits / cap) * cap if cap else logits

    def describe(self, model: Any) -> dict[str, Any]:
        config = model.config
        hidden = self.hidden_size(config)
        types = self.layer_types(config, len(self.layers(model)))
        sliding = [kind for kind in types if kind.startswith("sliding")]
        rope = getattr(config, "rope_parameters", None) or {}
        thetas = {kind: params.get("rope_theta") for kind, params in rope.items() if isinstance(params, dict)}
        return {
            "ffn_size": int(config.intermediate_size),
            "mlp": f"gated {config.hidden_activation} (gate ⊙ up → down)",
            "positional": "RoPE (rotary) on q and k" + "".join(
                f"; θ={theta:,.0f} on {kind.replace('_attention', '')} layers" for kind, theta in thetas.items()
                if theta),
            "norm": "RMSNorm, weight stored as (1 + w); before and after each sublayer, plus q/k norms",
            "attention": (f"causal; sliding window {config.sliding_window} on {len(sliding)} of {len(types)} layers"
                          if sliding else "causal on every layer"),
            "embedding_scale": sqrt_label(hidden),
            "grouped_query": self.key_value_heads(config) < self.num_heads(config),
        }
