"""BERT and MiniLM (config.model_type "bert"): post-norm LayerNorm, learned positions + segments, bidirectional."""

from __future__ import annotations

from typing import Any, Callable

import torch

from service.errors import UnsupportedError
from service.families.base import (FamilyAdapter, FamilyFacts, LAYER_NORM_FORMULA, layer_norm, linear, positions,
                                   split_heads)


class BertAdapter(FamilyAdapter):
    model_type = "bert"
    facts = FamilyFacts(
        model_type="bert", name="BERT / MiniLM", short_name="BERT/MiniLM", architecture="encoder-only",
        norm_name="LayerNorm", norm_formula=LAYER_NORM_FORMULA, norm_placement="post-norm", positional="learned",
        segment_embeddings=True, embedding_norm=True,
    )

    def check(self, config: Any) -> None:
        if getattr(config, "is_decoder", False):
            raise UnsupportedError(
                "Attention Atlas supports BERT as an encoder; this BERT is configured as a decoder.")

    def num_heads(self, config: Any) -> int:
        return int(config.num_attention_heads)

    def hidden_size(self, config: Any) -> int:
        return int(config.hidden_size)

    def base_model(self, model: Any) -> torch.nn.Module:
        return model.bert if hasattr(model, "bert") else model

    def layers(self, model: Any) -> torch.nn.ModuleList:
        return self.base_model(model).encoder.layer

    def word_embeddings(self, model: Any) -> torch.nn.Embedding:
        return self.base_model(model).embeddings.word_embeddings

    def position_embeddings(self, model: Any) -> torch.nn.Module:
        return self.base_model(model).embeddings.position_embeddings

    def self_attention(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].attention.self

    def post_attention_norm(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].attention.output.LayerNorm

    def output_projection(self, model: Any, layer: int) -> torch.nn.Module:
        return self.layers(model)[layer].attention.output.dense

    def after_attention_tap(self, model: Any, layer: int) -> tuple[torch.nn.Module, str]:
        return self.layers(model)[layer].attention.output, "post"

    def unembedding(self, model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        """BertForMaskedLM's head: dense → activation → LayerNorm → decoder (tied to the embeddings)."""
        head = getattr(model, "cls", None)
        if head is None or not hasattr(head, "predictions"):
            raise UnsupportedError(
                f"This {type(model).__name__} has no masked-language-model head to unembed with; "
                "load BertForMaskedLM instead."
            )
        return head

    def project_qkv(self, model: Any, layer: int, x: torch.Tensor):
        attention = self.self_attention(model, layer)
        d = self.head_dim(model.config)
        return (split_heads(linear(attention.query, x), d),  # (T, H, d)
                split_heads(linear(attention.key, x), d),    # (T, H, d)
                split_heads(linear(attention.value, x), d))  # (T, H, d)

    def after_attention(self, model: Any, layer: int, attention_output: torch.Tensor,
                        residual: torch.Tensor) -> torch.Tensor:
        return layer_norm(self.post_attention_norm(model, layer), attention_output + residual)  # (T, D)

    def embed(self, model: Any, input_ids: torch.Tensor) -> torch.Tensor:
        embeddings = self.base_model(model).embeddings
        rows = embeddings.word_embeddings.weight[input_ids]                             # (T, D)
        rows = rows + embeddings.token_type_embeddings.weight[0]                     # segment 0, as the tokenizer sends
        rows = rows + positions(embeddings.position_embeddings, len(input_ids))         # (T, D)
        return layer_norm(embeddings.LayerNorm, rows)                                   # (T, D)

    def describe(self, model: Any) -> dict[str, Any]:
        config = model.config
        return {
            "ffn_size": int(config.intermediate_size),
            "mlp": f"{config.hidden_act} MLP (up → down)",
            "positional": f"learned absolute positions ({config.max_position_embeddings}) + segment embeddings",
            "norm": "LayerNorm after each residual add (post-norm) and on the embeddings",
            "attention": "bidirectional: every token sees every token", "embedding_scale": None,
            "grouped_query": False,
        }
