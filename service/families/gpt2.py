"""GPT-2 (config.model_type "gpt2"): pre-norm LayerNorm, learned positions, one fused Q/K/V projection (Conv1D)."""

from __future__ import annotations

from typing import Any

import torch

from service.families.base import FamilyAdapter, FamilyFacts, LAYER_NORM_FORMULA, positions, split_heads


def conv1d(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """GPT-2's Conv1D is x · W + b with W stored (in, out): (…, in) → (…, out)."""
    return torch.addmm(module.bias, x.reshape(-1, x.shape[-1]), module.weight).view(*x.shape[:-1], -1)


class GPT2Adapter(FamilyAdapter):
    model_type = "gpt2"
    facts = FamilyFacts(
        model_type="gpt2", name="GPT-2", short_name="GPT-2", architecture="decoder-only", norm_name="LayerNorm",
        norm_formula=LAYER_NORM_FORMULA, norm_placement="pre-norm", positional="learned", fused_qkv=True,
    )

    def num_heads(self, config: Any) -> int:
        return int(config.n_head)

    def hidden_size(self, config: Any) -> int:
        return int(config.n_embd)

    def base_model(self, model: Any) -> torch.nn.Module:
        return model.transformer if hasattr(model, "transformer") else model

    def layers(self, model: Any) -> torch.nn.ModuleList:
        return self.base_model(model).h

    def word_embeddings(self, model: Any) -> torch.nn.Embedding:
        return self.base_model(model).wte

    def position_embeddings(self, model: Any) -> torch.nn.Module:
        return self.base_model(model).wpe

    def self_attention(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].attn  # scaling includes 1/(layer+1) when scale_attn_by_inverse_layer_idx

    def input_norm(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].ln_1

    def output_projection(self, model: Any, layer: int) -> torch.nn.Module:
        return self.self_attention(model, layer).c_proj

    def after_attention_tap(self, model: Any, layer: int) -> tuple[torch.nn.Module, str]:
        return self.layers(model)[layer].ln_2, "pre"

    def final_norm(self, model: Any) -> torch.nn.Module:
        return self.base_model(model).ln_f

    def project_qkv(self, model: Any, layer: int, x: torch.Tensor):
        fused = conv1d(self.self_attention(model, layer).c_attn, x)  # (T, 3D)
        q, k, v = fused.split(self.hidden_size(model.config), dim=-1)  # each (T, D)
        d = self.head_dim(model.config)
        return split_heads(q, d), split_heads(k, d), split_heads(v, d)  # (T, H, d) each

    def project_output(self, model: Any, layer: int, concat: torch.Tensor) -> torch.Tensor:
        projection = self.output_projection(model, layer)
        return concat @ projection.weight + projection.bias  # Conv1D: (…, H·d) · (H·d, D) → (…, D)

    def after_attention(self, model: Any, layer: int, attention_output: torch.Tensor,
                        residual: torch.Tensor) -> torch.Tensor:
        return residual + attention_output  # (T, D): the next LayerNorm (ln_2) belongs to the MLP

    def embed(self, model: Any, input_ids: torch.Tensor) -> torch.Tensor:
        rows = self.word_embeddings(model).weight[input_ids]                        # (T, D)
        return rows + positions(self.position_embeddings(model), len(input_ids))   # (T, D)

    def notes(self, model: Any, layer: int) -> list[str]:
        if getattr(model.config, "scale_attn_by_inverse_layer_idx", False):
            return [f"This GPT-2 also divides scores by the layer number + 1 ({layer + 1})."]
        return []

    def describe(self, model: Any) -> dict[str, Any]:
        config = model.config
        return {
            "ffn_size": int(config.n_inner or 4 * config.n_embd),
            "mlp": f"{config.activation_function} MLP (up → down)",
            "positional": f"learned absolute positions ({config.n_positions})",
            "norm": "LayerNorm before each sublayer (pre-norm) and a final LayerNorm",
            "attention": "causal on every layer", "embedding_scale": None, "grouped_query": False,
        }

    def _lm_class(self) -> str:
        return "GPT2LMHeadModel"
