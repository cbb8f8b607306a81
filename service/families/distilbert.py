"""DistilBERT (config.model_type "distilbert"): BERT without segment embeddings, post-norm, bidirectional."""

from __future__ import annotations

from typing import Any, Callable

import torch

from service.errors import UnsupportedError
from service.families.base import (FamilyAdapter, FamilyFacts, LAYER_NORM_FORMULA, layer_norm, linear, positions,
                                   split_heads)


class DistilBertAdapter(FamilyAdapter):
    model_type = "distilbert"
    facts = FamilyFacts(
        model_type="distilbert", name="DistilBERT", short_name="DistilBERT", architecture="encoder-only",
        norm_name="LayerNorm", norm_formula=LAYER_NORM_FORMULA, norm_placement="post-norm", positional="learned",
        embedding_norm=True,
    )
    input_names = ("input_ids", "attention_mask")  # no token_type_ids: DistilBERT has no segment embeddings

    def num_heads(self, config: Any) -> int:
        return int(config.n_heads)

    def hidden_size(self, config: Any) -> int:
        return int(config.dim)

    def base_model(self, model: Any) -> torch.nn.Module:
        return model.distilbert if hasattr(model, "distilbert") else model

    def layers(self, model: Any) -> torch.nn.ModuleList:
        return self.base_model(model).transformer.layer

    def word_embeddings(self, model: Any) -> torch.nn.Embedding:
        return self.base_model(model).embeddings.word_embeddings

    def position_embeddings(self, model: Any) -> torch.nn.Module:
        return self.base_model(model).embeddings.position_embeddings

    def self_attention(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].attention

    def post_attention_norm(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].sa_layer_norm

    def output_projection(self, model: Any, layer: int) -> torch.nn.Module:
        return self.self_attention(model, layer).out_lin

    def after_attention_tap(self, model: Any, layer: int) -> tuple[torch.nn.Module, str]:
        return self.post_attention_norm(model, layer), "post"

    def unembedding(self, model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        """DistilBertForMaskedLM's head: vocab_transform → activation → vocab_layer_norm → vocab_projector."""
        if not hasattr(model, "vocab_projector"):
            raise UnsupportedError(
                f"This {type(model).__name__} has no masked-language-model head to unembed with; "
                "load DistilBertForMaskedLM instead."
            )

        def masked_lm_head(hidden: torch.Tensor) -> torch.Tensor:
            transformed = model.activation(model.vocab_transform(hidden))  # (…, D)
            return model.vocab_projector(model.vocab_layer_norm(transformed))  # (…, V)

        return masked_lm_head

    def project_qkv(self, model: Any, layer: int, x: torch.Tensor):
        attention = self.self_attention(model, layer)
        d = self.head_dim(model.config)
        return (split_heads(linear(attention.q_lin, x), d),  # (T, H, d)
                split_heads(linear(attention.k_lin, x), d),  # (T, H, d)
                split_heads(linear(attention.v_lin, x), d))  # (T, H, d)

    def after_attention(self, model: Any, layer: int, attention_output: torch.Tensor,
                        residual: torch.Tensor) -> torch.Tensor:
        return layer_norm(self.post_attention_norm(model, layer), attention_output + residual)  # (T, D)

    def embed(self, model: Any, input_ids: torch.Tensor) -> torch.Tensor:
        embeddings = self.base_model(model).embeddings
        rows = embeddings.word_embeddings.weight[input_ids]                             # (T, D)
        rows = rows + positions(embeddings.position_embeddings, len(input_ids))         # (T, D)
        return layer_norm(embeddings.LayerNorm, rows)                                   # (T, D)

    def describe(self, model: Any) -> dict[str, Any]:
        config = model.config
        return {
            "ffn_size": int(config.hidden_dim),
            "mlp": f"{config.activation} MLP (up → down)",
            "positional": ("fixed sinusoidal positions" if config.sinusoidal_pos_embds
                           else f"learned absolute positions ({config.max_position_embeddings})"),
            "norm": "LayerNorm after each residual add (post-norm) and on the embeddings",
            "attention": "bidirectional: every token sees every token", "embedding_scale": None,
            "grouped_query": False,
        }
