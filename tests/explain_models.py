"""Tiny random models of every family Explain supports (and one it refuses), built in code for fast tests."""

from __future__ import annotations

from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig, BertModel, DistilBertConfig, DistilBertModel, Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config,
    GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast,
)

WORDS = ("the cat sat on mat a dog ran in park and it was very happy today we saw birds fly over trees "
         "attention is all you need").split()
SENTENCE = "the cat sat on the mat and the dog ran in the park"


def tiny_tokenizer(bos: str | None = None, cls_sep: bool = False) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over WORDS; optional <bos> prefix or [CLS] … [SEP] wrapping."""
    specials = ["<pad>", "<unk>", "<bos>", "<eos>", "[CLS]", "[SEP]"]
    vocab = {token: index for index, token in enumerate(specials + list(dict.fromkeys(WORDS)))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        backend.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, vocab[bos])])
    if cls_sep:
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<bos>", eos_token="<eos>", cls_token="[CLS]", sep_token="[SEP]")


VOCAB = 64


def tiny_gemma() -> tuple[Any, Any]:
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, sliding_window=4, max_position_embeddings=128,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"], query_pre_attn_scalar=8,
    )
    model = Gemma3ForCausalLM._from_config(config, attn_implementation="eager").eval()
    _randomise_norms(model)
    return model, tiny_tokenizer(bos="<bos>")


def tiny_gpt2() -> tuple[Any, Any]:
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=128)
    return GPT2LMHeadModel._from_config(config, attn_implementation="eager").eval(), tiny_tokenizer()


def tiny_bert() -> tuple[Any, Any]:
    torch.manual_seed(2)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    return BertModel._from_config(config, attn_implementation="eager").eval(), tiny_tokenizer(cls_sep=True)


def tiny_distilbert() -> tuple[Any, Any]:
    torch.manual_seed(3)
    config = DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                              max_position_embeddings=128)
    return DistilBertModel._from_config(config, attn_implementation="eager").eval(), tiny_tokenizer(cls_sep=True)


def tiny_llama() -> tuple[Any, Any]:
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2)
    return LlamaForCausalLM._from_config(config, attn_implementation="eager").eval(), tiny_tokenizer(bos="<bos>")


def _randomise_norms(model: torch.nn.Module) -> None:
    """Random init leaves Gemma's norm weights at 0 (scale 1); give them values so a wrong norm would show."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.normal_(0.0, 0.3)


TINY_MODELS = {"gemma3_text": tiny_gemma, "gpt2": tiny_gpt2, "bert": tiny_bert, "distilbert": tiny_distilbert}
