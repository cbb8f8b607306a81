"""Greedy lines of several requests in one batched decoding loop (Ask: few-shot QA under a class's load).

A decoding step of one request moves all of Gemma's weights, its 262k-row output layer included, through the CPU
for one token; a batch moves them once for every request in it. So the requests that share the model's cached
prompt prefix (service/attention/prefix_cache.py) run together:
- one prefill: each prompt's own tokens right-aligned in a block of the longest one's width, pads first, every pad
  blocked in the mask (as lm_calls.score_trees_together does for label scoring);
- then one forward per step, one token per request, until every line has stopped (newline, EOS or its own token
  limit); a stopped line leaves the batch and its cache. Each request's constraint, stop and log-probabilities are
  its own, on its own logits.
Each line, and the attention it captured, equals what lm_calls.generate_line gives the request alone: the same
masks over the same keys (pads have weight exactly 0), the same greedy choice. A line that stopped at its token
limit gets its last token's row from one more step, the row generate_line leaves pending and computes on demand.
Hold the model's lock.
"""

from __future__ import annotations

from typing import Any

import torch

from service.attention.capture import rows_from_generation
from service.attention.prefix_cache import PREFIXES, Prefix
from service.tasks.lm_calls import (Line, LineJob, _mask_rows, _own_rows, _right_aligned, _tree_masks, encode,
                                    ends_line, generate_line, kept_line, kernel_for, stop_ids, unshared)

PAD_ID = 0                          # any id: a pad is blocked in every mask and its outputs are never read
# Rows a decoding step keeps while the batch had that many: on the 2-core CPU the 262k × 640 output layer costs
# 81 ms for 1 row, 172 / 268 ms for 2 / 3 rows and 211 ms for 4 (a faster kernel from 4 rows on), so up to 4
# rows a stopped line stays in as a filler, fed a pad, its output unread.
MIN_ROWS = 4


def generate_line_jobs(jobs: list[LineJob]) -> list[Line]:
    """Each job's Line, equal to what generate_line gives it alone; the jobs on one model, tokenizer, kernel and
    cached prefix that fit the model's sliding window run as ONE batched loop (generate_lines_together)."""
    results: list[Line | None] = [None] * len(jobs)
    groups: dict[tuple[int, int, bool, str | None], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault((id(job.model), id(job.tokenizer), job.capture_attention, job.prefix_text), []).append(index)
    with unshared():
        for indices in groups.values():
            first = jobs[indices[0]]
            model, tokenizer = first.model, first.tokenizer
            prompts = [encode(tokenizer, jobs[index].prompt, model.device)[0].tolist() for index in indices]
            prefixes = [PREFIXES.lookup(model, tokenizer, first.prefix_text, ids) if first.prefix_text else None
                        for ids in prompts]
            together = [position for position, prefix in enumerate(prefixes) if prefix is not None]
            if len(together) > 1 and fits_window(model, [prompts[position] for position in together],
                                                 [jobs[indices[position]].max_new_tokens for position in together],
                                                 len(prefixes[together[0]].ids)):
                with kernel_for(model, first.capture_attention):
                    lines = generate_lines_together(
                        model, tokenizer, [jobs[indices[position]] for position in together],
                        [prompts[position] for position in together], prefixes[together[0]])
                for position, line in zip(together, lines):
                    results[indices[position]] = line
            for index in indices:
                if results[index] is None:
                    job = jobs[index]
                    results[index] = generate_line(model, tokenizer, job.prompt, job.max_new_tokens, job.constraint,
                                                   job.capture_attention, job.prefix_text)
    return results  # type: ignore[return-value]  (every slot is filled above)


def fits_window(model: Any, prompts: list[list[int]], max_new_tokens: list[int], cached: int) -> bool:
    """Whether the batch's cache stays inside a sliding-window layer's window (then no layer drops a key, and one
    mask serves every layer); models without sliding layers always fit."""
    config = getattr(model.config, "get_text_config", lambda: model.config)()
    window = getattr(config, "sliding_window", None)
    if not window or "sliding_attention" not in set(getattr(config, "layer_types", None) or ()):
        return True
    width = max(len(ids) for ids in prompts) - cached
    return cached + width + max(max_new_tokens) + 1 < window


def generate_lines_together(model: Any, tokenizer: Any, jobs: list[LineJob], prompts: list[list[int]],
                            prefix: Prefix) -> list[Line]:
    """generate_line of each job (its prompt ids in `prompts`, all starting with `prefix`), in one batched loop."""
    device = model.device
    cached = len(prefix.ids)
    blocks = [len(ids) - cached for ids in prompts]                                    # n per request
    width = max(blocks)                                                                # W
    batch = len(jobs)
    capture = jobs[0].capture_attention
    eos = stop_ids(model, tokenizer)
    limits = [max(1, int(job.max_new_tokens)) for job in jobs]

    input_ids = torch.full((batch, width), PAD_ID, dtype=torch.long, device=device)   # (batch, W)
    position_ids = torch.full((batch, width), cached, dtype=torch.long, device=device)  # (batch, W)
    row_masks = []
    for row, (ids, own) in enumerate(zip(prompts, blocks)):
        input_ids[row, width - own:] = torch.tensor(ids[cached:], device=device)
        position_ids[row, width - own:] = torch.arange(cached, len(ids), device=device)
        row_masks.append(_mask_rows(model, _tree_masks(model, list(range(len(ids))), [-1] * len(ids)), cached))
    cache = prefix.fresh_cache()
    cache.batch_repeat_interleave(batch)                                               # (batch, kv_head, p, dim)
    output = model(input_ids=input_ids, position_ids=position_ids,
                   attention_mask=_right_aligned(row_masks, blocks, width), cache=cache, use_cache=True,
                   output_attentions=capture, logits_to_keep=1)
    steps: list[list[Any]] = [                 # per row, per step, per layer: the prefill's (1, head, P, P) first
        [prefix.full_attention([_own_rows(layer, row, own, width) for layer in output.attentions])] if capture else []
        for row, own in enumerate(blocks)]
    generated: list[list[int]] = [[] for _ in jobs]
    logprobs: list[list[float]] = [[] for _ in jobs]
    done = [False] * batch
    last_row_owed = [False] * batch          # stopped at its limit: its last token's row is still to be computed
    active = list(range(batch))              # the rows in the forward, in batch order (a stopped line leaves it)
    columns = cached + width                                                           # keys in the cache now
    while True:
        logits = output.logits[:, -1].to(dtype=torch.float32)                          # (active, vocab)
        feeding = []                                                                   # (slot, row) to feed next
        for slot, row in enumerate(active):
            if not done[row]:
                token = _greedy(jobs[row], prompts[row] + generated[row], logits[slot:slot + 1])
                generated[row].append(token)
                logprobs[row].append(float(torch.log_softmax(logits[slot], dim=-1)[token]))
                if token in eos or ends_line(tokenizer, token):
                    done[row] = True
                elif len(generated[row]) >= limits[row]:
                    done[row], last_row_owed[row] = True, capture
                if not done[row] or last_row_owed[row]:
                    feeding.append((slot, row))
        if not feeding:
            break
        fed = {row for _, row in feeding}
        staying = feeding + [(slot, row) for slot, row in enumerate(active)     # stopped lines kept as fillers
                             if row not in fed][: max(0, min(MIN_ROWS, len(active)) - len(feeding))]
        if len(staying) < len(active):                 # the other stopped lines leave the batch and its cache
            staying.sort()
            output.cache.batch_select_indices(torch.tensor([slot for slot, _ in staying], device=device))
            active = [row for _, row in staying]
        step_ids = torch.tensor([[generated[row][-1] if row in fed else PAD_ID] for row in active],
                                device=device)                                         # (active, 1)
        step_positions = torch.tensor([[len(prompts[row]) + len(generated[row]) - 1] for row in active],
                                      device=device)                                   # (active, 1)
        columns += 1
        output = model(input_ids=step_ids, position_ids=step_positions,
                       attention_mask=_step_mask(model, [blocks[row] for row in active], width, cached, columns),
                       cache=output.cache, use_cache=True, output_attentions=capture, logits_to_keep=1)
        for slot, row in enumerate(active):
            if row not in fed:
                continue                               # a filler: its output is never read
            if capture:
                steps[row].append([_step_row(layer, slot, blocks[row], width, cached)
                                   for layer in output.attentions])                    # per layer (1, head, 1, keys)
            last_row_owed[row] = False                 # a stopped line was fed its last token: its row is here
    lines = []
    for row in range(batch):
        text, kept = kept_line(tokenizer, generated[row], eos)
        attention = rows_from_generation(steps[row], prompts[row] + generated[row]) if capture else None
        lines.append(Line(text.rstrip(), logprobs[row][: len(kept)], attention))
    return lines


def _greedy(job: LineJob, ids: list[int], logits: torch.Tensor) -> int:
    """The job's greedy token from its (1, vocab) logits, after its constraint (as generate's greedy search)."""
    scores = logits.clone()
    if job.constraint is not None:
        scores = job.constraint(torch.tensor([ids], device=logits.device), scores)
    return int(torch.argmax(scores[0]))


def _step_mask(model: Any, blocks: list[int], width: int, cached: int, columns: int) -> Any:
    """(active, 1, 1, columns) additive mask of one decoding step: every key visible but each row's pads (the
    first W - n of its block); one tensor for every layer type (the batch fits the window: fits_window)."""
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    mask = torch.zeros((len(blocks), 1, 1, columns), dtype=dtype, device=model.device)
    for row, own in enumerate(blocks):
        mask[row, 0, 0, cached: cached + width - own] = torch.finfo(dtype).min
    config = getattr(model.config, "get_text_config", lambda: model.config)()
    layer_types = set(getattr(config, "layer_types", None) or ())
    if "sliding_attention" in layer_types and getattr(config, "sliding_window", None):
        return {"full_attention": mask, "sliding_attention": mask}
    return mask


def _step_row(layer: torch.Tensor, row: int, own: int, width: int, cached: int) -> torch.Tensor:
    """(1, head, 1, keys): one request's attention row at a decoding step, without its pad columns."""
    rows = layer[row:row + 1]                                                          # (1, head, 1, columns)
    return torch.cat([rows[..., :cached], rows[..., cached + width - own:]], dim=-1)
