"""build_lesson: the three steps behind LessonData — preprocess (tokenize three ways, check the length) → forward
(the generation model once with hooks, its embedding table, the encoder once) → postprocess (numbers and names)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from service.attention.capture import eager_attention, stack_attention
from service.attention.tokens import display_tokens
from service.errors import InvalidInputError
from service.families import adapter_for
from service.lesson.data import MAX_LESSON_TOKENS, TOP_NEXT_TOKENS, LessonData, Tokenization
from service.lesson.embeddings import embedding_geometry
from service.lesson.residual import residual_pass
from service.lesson.tokenizers import (SCHEMES, TRAINED_BPE_SOURCE, TRAINED_WORDPIECE_SOURCE, scheme_of, tokenize,
                                       trained_byte_level_bpe, trained_wordpiece, vocabulary_label)
from service.models.loading import LoadedModel


def lesson_token_ids(generation: LoadedModel, text: str) -> list[int]:
    """The generation model's ids of `text`; InvalidInputError past MAX_LESSON_TOKENS."""
    ids = [int(token_id) for token_id in generation.tokenizer(text)["input_ids"]]
    if len(ids) > MAX_LESSON_TOKENS:
        raise InvalidInputError(f"The lesson works on one short sentence: yours has {len(ids)} tokens; the limit is "
                                f"{MAX_LESSON_TOKENS}. Shorten it to one sentence and try again.")
    return ids


def build_lesson(text: str, generation: LoadedModel, encoder: LoadedModel | None = None,
                 encoder_decoder_model: str | None = None) -> LessonData:
    """Everything the Lesson shows about `text` (checked non-empty by the caller), from the generation model (a causal
    LM) and the profile's encoder (or None). Takes each model's lock in turn, never both at once."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    token_ids = lesson_token_ids(generation, text)
    tokens, special = display_tokens(generation.tokenizer, token_ids)
    tokenizations = three_tokenizations(text, generation, encoder)
    timings["tokenizers"] = time.perf_counter() - started

    names: dict[int, str] = {}

    def token_text(token_id: int) -> str:
        if token_id not in names:
            names[token_id] = vocabulary_label(generation.tokenizer, token_id)
        return names[token_id]

    model = generation.model
    adapter = adapter_for(model)
    with generation.turn():
        mark = time.perf_counter()
        hooked = residual_pass(model, token_ids)
        timings["forward"] = time.perf_counter() - mark
        mark = time.perf_counter()
        geometry = embedding_geometry(model, token_ids, token_text)
        timings["embeddings"] = time.perf_counter() - mark
    top_next_ids = [int(i) for i in np.argsort(-hooked.next_token_logits, kind="stable")[:TOP_NEXT_TOKENS]]

    mark = time.perf_counter()
    encoder_tokens, encoder_attention = encoder_view(encoder, text) if encoder is not None else (None, None)
    timings["encoder"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    return LessonData(
        text=text, model_name=generation.name, tokens=tokens, token_ids=token_ids, special=special,
        tokenizations=tokenizations, hidden_size=adapter.hidden_size(model.config),
        embedding_cosine=geometry.cosine, embedding_norms=geometry.norms, neighbours=geometry.neighbours,
        next_token_logits=hooked.next_token_logits,
        top_next_tokens=[token_text(i) for i in top_next_ids], top_next_ids=top_next_ids,
        attention_change=hooked.attention_change, ffn_change=hooked.ffn_change,
        residual_norms=hooked.residual_norms, decoder_attention=hooked.attention,
        decoder_layer_types=adapter.layer_types(model.config, len(adapter.layers(model))),
        encoder_model_name=encoder.name if encoder is not None else None, encoder_tokens=encoder_tokens,
        encoder_attention=encoder_attention, encoder_decoder_model=encoder_decoder_model, timings=timings,
    )


def three_tokenizations(text: str, generation: LoadedModel, encoder: LoadedModel | None) -> list[Tokenization]:
    """The generation model's tokenizer, a WordPiece (the encoder's, else BERT's algorithm trained here), a byte-level
    BPE (the generation model's own when it is one, e.g. GPT-2 in hub; else GPT-2's algorithm trained here)."""
    views = [tokenize(generation.tokenizer, text, _own_name(generation),
                      f"the generation model's own tokenizer ({generation.name})")]
    if encoder is not None and scheme_of(encoder.tokenizer) == "wordpiece":
        views.append(tokenize(encoder.tokenizer, text, _own_name(encoder),
                              f"the encoder's own tokenizer ({encoder.name})"))
    else:
        views.append(tokenize(trained_wordpiece(), text, "WordPiece (BERT style)", TRAINED_WORDPIECE_SOURCE))
    if scheme_of(generation.tokenizer) == "byte-level-bpe":
        views.append(tokenize(generation.tokenizer, text, _own_name(generation),
                              f"the generation model's own tokenizer ({generation.name})"))
    else:
        views.append(tokenize(trained_byte_level_bpe(), text, "byte-level BPE (GPT-2 style)", TRAINED_BPE_SOURCE))
    return views


def encoder_view(encoder: LoadedModel, text: str) -> tuple[list[str], np.ndarray]:
    """(display tokens (T_enc,), attention (L_enc, H_enc, T_enc, T_enc)) of one eager pass of the encoder over
    `text` ([CLS] … [SEP]); holds the encoder's lock."""
    import torch

    ids = [int(token_id) for token_id in encoder.tokenizer(text, truncation=True)["input_ids"]]
    with encoder.turn(), eager_attention(encoder.model):
        input_ids = torch.tensor([ids], device=encoder.model.device)          # (1, T_enc)
        outputs = encoder.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                output_attentions=True)
    return display_tokens(encoder.tokenizer, ids)[0], stack_attention(outputs.attentions)


def _own_name(loaded: LoadedModel) -> str:
    """"Gemma 3 · SentencePiece": the model's family, then its tokenizer's scheme."""
    scheme = scheme_of(loaded.tokenizer)
    return f"{adapter_for(loaded.model).facts.name} · {SCHEMES.get(scheme, scheme)}"


__all__ = ["MAX_LESSON_TOKENS", "TOP_NEXT_TOKENS", "build_lesson", "lesson_token_ids", "three_tokenizations"]
