"""Translation on a Marian encoder-decoder (opus-mt en-zh / zh-en): encoder, decoder and cross-attention.

preprocess (optional source prefix, truncate) → forward (`generate`, then one eager pass over source and output)
→ postprocess (decoded translation; segments source / translation).
"""

from __future__ import annotations

import time

from service import limits
from service.attention import capture
from service.models.loading import LoadedModel
from service.result import AttentionResult, Segment
from service.tasks.common import as_tensor, build_result, token_budget


def run_translation(
    loaded: LoadedModel, text: str, direction: str, max_attention_tokens: int, source_prefix: str = ""
) -> AttentionResult:
    """Translate with a Marian model; capture encoder, decoder and cross-attention over source and output."""
    tokenizer, model = loaded.tokenizer, loaded.model
    started = time.perf_counter()
    budget = token_budget(loaded, max_attention_tokens)
    source = source_prefix + text
    full_length = len(tokenizer(source)["input_ids"])
    ids = tokenizer(source, truncation=True, max_length=budget)["input_ids"]
    input_ids = as_tensor(ids, loaded.device)  # (1, S)
    attention_mask = input_ids.new_ones(input_ids.shape)  # (1, S)
    # decoder start token + output ≤ budget; a translation longer than twice its source (+16) is runaway output
    max_new_tokens = max(1, min(limits.MAX_TRANSLATION_TOKENS, budget - 1, 2 * len(ids) + 16))
    output = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens)
    generated_at = time.perf_counter()
    target = output[0].tolist()  # decoder start token + translation (+ </s>)
    attention = capture.seq2seq_attention(model, input_ids, attention_mask, as_tensor(target, loaded.device))
    translation = tokenizer.decode(target, skip_special_tokens=True).strip()
    notices = []
    if full_length > len(ids):
        notices.append(capture.truncation_notice(len(ids)))
    if len(target) - 1 >= max_new_tokens:
        notices.append(f"Translation stopped at {max_new_tokens} tokens.")
    prefix_tokens = len(tokenizer(source_prefix, add_special_tokens=False)["input_ids"]) if source_prefix else 0
    text_end = len(ids) - 1 if ids and ids[-1] in set(getattr(tokenizer, "all_special_ids", [])) else len(ids)
    segments = [Segment("source", min(prefix_tokens, text_end), text_end, "encoder"),
                Segment("first token", 0, 1, "decoder", "sink"),  # the decoder start token
                Segment("translation", 1, len(target), "decoder", "output")]
    return build_result(
        loaded, "translation", "encoder-decoder", {"translation": translation, "direction": direction},
        encoder=(ids, attention.encoder), decoder=(target, attention.decoder), cross_attention=attention.cross,
        segments=[segment for segment in segments if segment.end > segment.start], prompt=source, notices=notices,
        timings={"model": generated_at - started, "capture": time.perf_counter() - generated_at},
    )
