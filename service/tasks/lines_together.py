"""Greedy lines of several requests in one batched decoding loop that others join while it runs (Ask under a class's
load: continuous batching).

A decoding step of one request moves all of Gemma's weights, its 262k-row output layer included, through the CPU
for one token; a batch moves them once for every request in it. So the requests that share the model's cached
prompt prefix (service/attention/prefix_cache.py) decode together, in a LineBatch:
- requests join it (`join`) with one prefill: their prompts' own tokens right-aligned in a block of the longest
  one's width, pads first, every pad blocked in the mask (as lm_calls.score_trees_together does for label
  scoring); their cache rows then join the running ones, pad columns added where the widths differ;
- each `step` is one forward with one token per request, its newest, and after it the tokens that follow the
  line's last words in its own prompt (an answer copied from its context goes on as the context does: prompt
  lookup); each tried token is kept only if it is the one the request chooses there, so a right guess saves a
  step and a wrong one costs its share of the forward. The Chinese example's 15-token answer takes 3 steps, not
  16 (alone 3.4 → 1.1 s). Each request's constraint, stop and log-probabilities are its own, on its own logits.
  A line that has stopped (newline, EOS or its own token limit) is handed back at once (`finished`) and leaves
  the batch and its cache; columns no request sees any more (a wrong guess's among them) leave too.
Each row sees exactly the keys it would see alone (a `visible` mask per row over the cache's columns; a blocked
key has weight exactly 0), at its own positions, so each line, and the attention it captured, equals what
lm_calls.generate_line gives the request alone. A line that stopped at its token limit gets its last token's row
from one more step, the row generate_line leaves pending and computes on demand.
Hold the model's lock around every call; between calls it may be let go (another request's code may run the
model, so each forward sets its kernel again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from service.attention.capture import rows_from_generation
from service.attention.prefix_cache import PREFIXES, Prefix
from service.heap import short_lived_tensors_in_heap
from service.tasks.few_rows import few_row_linears
from service.tasks.lm_calls import (Line, LineJob, encode, ends_line, generate_line, kept_line, kernel_for,
                                    request_prefix, stop_ids, unshared)

PAD_ID = 0                          # any id: a pad is blocked in every mask and its outputs are never read
# Rows a decoding step keeps while the batch had that many: on the 2-core CPU the 262k × 640 output layer (in the
# few-row layout, service/tasks/few_rows.py) costs 46 ms for 1 row (a matrix-vector product) and 29–38 ms for 2–4
# rows, so up to 4 rows a stopped line stays in as a filler, fed a pad, its output unread.
MIN_ROWS = 4
# A step feeds each decoding row its newest token and up to LOOKAHEAD tokens its prompt holds next (an Ask answer
# copies its context), verified in the same forward; at most STEP_TOKENS tokens in all, so a step of many rows
# stays near the cost of one token each. A line tries FIRST_LOOKAHEAD at first, twice as many after a step whose
# tries were all right, half after a wrong one: a one-step answer ("北京") alone costs the same as without tries
# (0.45 s both; trying 6 at once made it 0.56 s against 0.51), and the Chinese example's 15-token answer still
# takes 3 steps (2 tries first: 4).
LOOKAHEAD = 6
FIRST_LOOKAHEAD = 3
STEP_TOKENS = 64


def generate_line_jobs(jobs: list[LineJob]) -> list[Line]:
    """Each job's Line, equal to what generate_line gives it alone; the jobs on one model, tokenizer, kernel and
    cached prefix that fit the model's sliding window run as ONE batched loop (generate_lines_together)."""
    results: list[Line | None] = [None] * len(jobs)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(group_of(job), []).append(index)
    with unshared():
        for indices in groups.values():
            first = jobs[indices[0]]
            prompts = [prompt_ids(jobs[index]) for index in indices]
            prefixes = [cached_prefix(jobs[index], ids) for index, ids in zip(indices, prompts)]
            together = [position for position, prefix in enumerate(prefixes) if prefix is not None]
            if len(together) > 1:
                batch = LineBatch(first.model, first.tokenizer, prefixes[together[0]], first.capture_attention)
                if batch.fits([prompts[position] for position in together],
                              [jobs[indices[position]].max_new_tokens for position in together],
                              [jobs[indices[position]] for position in together]):
                    lines = generate_lines_together(batch, [jobs[indices[position]] for position in together],
                                                    [prompts[position] for position in together])
                    for position, line in zip(together, lines):
                        results[indices[position]] = line
            for index in indices:
                if results[index] is None:
                    results[index] = alone(jobs[index])
    return results  # type: ignore[return-value]  (every slot is filled above)


def group_of(job: LineJob) -> tuple[Any, ...]:
    """Jobs that may share one LineBatch: one model, tokenizer, kernel and cached prefix."""
    return (id(job.model), id(job.tokenizer), job.capture_attention, job.prefix_text)


def prompt_ids(job: LineJob) -> list[int]:
    return encode(job.tokenizer, job.prompt, job.model.device)[0].tolist()


def cached_prefix(job: LineJob, ids: list[int]) -> Prefix | None:
    """The job's cached prompt prefix, or None (no prefix text, reuse off, or a token split apart: then it runs
    alone, over its whole prompt)."""
    return PREFIXES.lookup(job.model, job.tokenizer, job.prefix_text, ids) if job.prefix_text else None


def alone(job: LineJob) -> Line:
    """generate_line of the job, at once, on this thread."""
    with unshared():
        return generate_line(job.model, job.tokenizer, job.prompt, job.max_new_tokens, job.constraint,
                             job.capture_attention, job.prefix_text, job.request_prefix_text)


def generate_lines_together(batch: "LineBatch", jobs: list[LineJob], prompts: list[list[int]]) -> list[Line]:
    """generate_line of each job (its prompt ids in `prompts`, all starting with the batch's prefix), all joining
    `batch` at once and stepping until every line has stopped."""
    batch.join(list(range(len(jobs))), jobs, prompts)
    while batch.busy():
        batch.step()
    lines = dict(batch.finished())
    return [lines[key] for key in range(len(jobs))]


@dataclass
class _Row:
    """One request in a LineBatch."""

    key: Any                                   # the caller's name for it, handed back with its line
    job: LineJob
    prompt: list[int]                          # its prompt ids (the cached prefix first)
    limit: int                                 # its max new tokens
    start: int = 0                             # where its own prompt starts (after its cached prefix)
    lookahead: int = FIRST_LOOKAHEAD           # how many tokens its next step tries after its newest one
    generated: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    steps: list[list[Any]] = field(default_factory=list)   # per step, per layer: the prefill's (1, head, P, P) first
    done: bool = False                         # its line has stopped
    owes_last_row: bool = False                # stopped at its limit: its last token's row is still to be computed
    handed_back: bool = False                  # its line is in `finished` (it may stay in as a filler)

    @property
    def fed_next(self) -> bool:
        """Whether the next step feeds this row its newest token."""
        return not self.done or self.owes_last_row

    def feeds_left(self) -> int:
        """At most how many more steps feed this row."""
        return self.limit - len(self.generated) + 1 if self.fed_next else 0


class LineBatch:
    """A decoding loop over one cached prefix: requests join between steps and leave as their lines stop.

    cache:   (rows, kv_head, columns, dim) per layer; the first `cached` columns are the prefix's
    visible: (rows, columns) bool: the columns each row attends to (its prefix, own prompt and own tokens)
    """

    def __init__(self, model: Any, tokenizer: Any, prefix: Prefix, capture_attention: bool) -> None:
        self.model, self.tokenizer, self.prefix = model, tokenizer, prefix
        self.capture = capture_attention
        self.cached = len(prefix.ids)
        self.eos = stop_ids(model, tokenizer)
        config = getattr(model.config, "get_text_config", lambda: model.config)()
        sliding = "sliding_attention" in set(getattr(config, "layer_types", None) or ())
        self.window: int | None = getattr(config, "sliding_window", None) if sliding else None
        self.rows: list[_Row] = []                     # in the cache's batch order
        self.cache: Any = None
        self.visible: torch.Tensor | None = None
        self._finished: list[tuple[Any, Line]] = []

    # --- what callers ask -------------------------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether a line is still being decoded (or owes its last row)."""
        return any(row.fed_next for row in self.rows)

    def columns(self) -> int:
        return self.visible.shape[1] if self.visible is not None else self.cached

    def fits(self, prompts: list[list[int]], max_new_tokens: list[int], jobs: list[LineJob] | None = None) -> bool:
        """Whether these prompts may join now: the cache must stay inside a sliding layer's window to its end (then
        no layer drops a key, and one mask serves every layer); models without sliding layers always fit. With the
        jobs, the columns their demonstration sets fill (join) count too."""
        if any(ids[: self.cached] != self.prefix.ids or len(ids) <= self.cached for ids in prompts):
            return False
        if self.window is None:
            return True
        starts = ([self._start(job, ids) for job, ids in zip(jobs, prompts)] if jobs is not None
                  else [self.cached] * len(prompts))
        joining = (max(start for start in starts) - self.cached
                   + max(len(ids) - start for ids, start in zip(prompts, starts)))       # D + W (join)
        area = max(self.columns() - self.cached, joining)
        feeds = max([row.feeds_left() for row in self.rows] + [max(1, int(limit)) for limit in max_new_tokens])
        return self.cached + area + feeds + 1 < self.window

    def finished(self) -> list[tuple[Any, Line]]:
        """(key, Line) of every line that stopped since the last call."""
        lines, self._finished = self._finished, []
        return lines

    # --- the loop ---------------------------------------------------------------------------------------------

    def join(self, keys: list[Any], jobs: list[LineJob], prompts: list[list[int]]) -> None:
        """Prefill the jobs (their prompt ids in `prompts`, each starting with the prefix; check `fits` first) in
        one forward, choose each one's first token, and add their rows to the running ones.

        A job whose demonstration set is cached (request_prefix) runs only the tokens after it: its set's keys and
        values after the shared prefix fill d columns, right-aligned in a block of the widest one's D, before the
        forward; its n computed tokens are right-aligned in the forward's width W. Columns: cached | D | W.
        A job whose set is not cached yet runs the set's tokens here too, and the set is kept for the next request
        (_keep_demonstration_set): one batched forward for all of them, where a run per new set cost ~150 ms each
        (8 Ask requests on new sets: 1.74 → 1.23 s to their answers).
        """
        cached = self.cached
        own_prefixes = [self._own_prefix(job, ids) for job, ids in zip(jobs, prompts)]
        starts = [len(own.ids) if own is not None else cached for own in own_prefixes]
        filled = [start - cached for start in starts]                                  # d per request
        blocks = [len(ids) - start for ids, start in zip(prompts, starts)]            # n per request
        depth, width = max(filled), max(blocks)                                        # D, W
        device = self.model.device
        input_ids = torch.full((len(jobs), width), PAD_ID, dtype=torch.long, device=device)   # (new, W)
        position_ids = torch.full((len(jobs), width), cached, dtype=torch.long, device=device)  # (new, W)
        visible = torch.zeros((len(jobs), cached + depth + width), dtype=torch.bool, device=device)
        visible[:, :cached] = True                                                     # (new, cached + D + W)
        allowed = torch.zeros((len(jobs), width, cached + depth + width), dtype=torch.bool, device=device)
        causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()   # (W, W)
        for row, (ids, start, own, fill) in enumerate(zip(prompts, starts, blocks, filled)):
            input_ids[row, width - own:] = torch.tensor(ids[start:], device=device)
            position_ids[row, width - own:] = torch.arange(start, len(ids), device=device)
            visible[row, cached + depth - fill: cached + depth] = True
            allowed[row, width - own:, : cached + depth] = visible[row, : cached + depth]
            allowed[row, width - own:, cached + depth + width - own:] = causal[:own, :own]
            visible[row, cached + depth + width - own:] = True
        cache = self.prefix.fresh_cache()
        cache.batch_repeat_interleave(len(jobs))                                       # (new, kv_head, p, dim)
        if depth:
            _fill_columns(cache, cached, depth, own_prefixes, filled)                  # (new, kv_head, p + D, dim)
        handed_back = len(self._finished)
        try:
            with torch.inference_mode(), unshared(), kernel_for(self.model, self.capture):
                with short_lived_tensors_in_heap(), few_row_linears(self.model):
                    output = self.model(input_ids=input_ids, position_ids=position_ids,
                                        attention_mask=self._mask(allowed[:, None]), cache=cache,
                                        use_cache=True, output_attentions=self.capture, logits_to_keep=1)
                rows = [_Row(key, job, ids, max(1, int(job.max_new_tokens)), start)
                        for key, job, ids, start in zip(keys, jobs, prompts, starts)]
                for row, (entry, own, own_prefix) in enumerate(zip(rows, blocks, own_prefixes)):
                    if self.capture:
                        seen = visible[row]                                            # cached + d + n columns
                        entry.steps.append((own_prefix or self.prefix).full_attention(
                            [layer[row:row + 1, :, width - own:][..., seen] for layer in output.attentions]))
                        if own_prefix is None:
                            self._keep_demonstration_set(entry, output, row, cached + depth + width - own,
                                                         width - own)
                    self._choose(entry, output.logits[row, -1])
                self._add(rows, output.cache, visible)
        except BaseException:
            del self._finished[handed_back:]           # none of them joined: the running rows are as they were
            raise

    def step(self) -> None:
        """One forward: every row still decoding gets its next token (a row owed its last row gets that row), and
        up to LOOKAHEAD more where the tokens its prompt holds after the line's last words were right (_proposal:
        each is fed in the same forward and kept only if it is the token the row chooses there, so the line and its
        attention rows equal one token a step); the lines that stopped are handed back (`finished`) and leave."""
        if not self.busy():
            self._leave()
            return
        device = self.model.device
        assert self.visible is not None
        fed = [row.fed_next for row in self.rows]
        proposals = self._proposals(fed)
        width = 1 + max(len(proposed) for proposed in proposals)                        # W: fed tokens per row
        columns = self.columns()
        step_ids = torch.full((len(self.rows), width), PAD_ID, dtype=torch.long, device=device)   # (rows, W)
        for slot, (row, feeding, proposed) in enumerate(zip(self.rows, fed, proposals)):
            if feeding:
                step_ids[slot, : 1 + len(proposed)] = torch.tensor([row.generated[-1], *proposed], device=device)
        step_positions = (torch.tensor([[len(row.prompt) + len(row.generated) - 1] for row in self.rows],
                                       device=device) + torch.arange(width, device=device))  # (rows, W)
        allowed = torch.zeros((len(self.rows), width, columns + width), dtype=torch.bool, device=device)
        allowed[:, :, :columns] = self.visible[:, None, :]                              # (rows, W, columns + W)
        allowed[:, :, columns:] = torch.ones((width, width), dtype=torch.bool, device=device).tril()
        with torch.inference_mode(), unshared(), kernel_for(self.model, self.capture):
            with short_lived_tensors_in_heap(), few_row_linears(self.model):
                output = self.model(input_ids=step_ids, position_ids=step_positions,
                                    attention_mask=self._mask(allowed[:, None]), cache=self.cache, use_cache=True,
                                    output_attentions=self.capture, logits_to_keep=width)
            self.cache = output.cache
            kept = torch.zeros((len(self.rows), width), dtype=torch.bool, device=device)  # block columns each keeps
            for slot, (row, feeding, proposed) in enumerate(zip(self.rows, fed, proposals)):
                if feeding:
                    self._read_block(slot, row, proposed, output, kept)
        self.visible = torch.cat([self.visible, kept], dim=1)                              # (rows, columns + W)
        self._leave()

    def _read_block(self, slot: int, row: _Row, proposed: list[int], output: Any, kept: torch.Tensor) -> None:
        """The row's tokens from its fed block (its newest token, then `proposed`): query i's row and choice are
        kept while every fed token before it was the one chosen; the first wrong proposal and the rest are not."""
        for query in range(1 + len(proposed)):
            kept[slot, query] = True
            if self.capture:
                keys = torch.cat([self.visible[slot], kept[slot]])  # type: ignore[index]  (columns + W)
                row.steps.append([layer[slot:slot + 1, :, query:query + 1][..., keys] for layer in output.attentions])
                # per layer (1, head, 1, keys): the row's own columns only
            if row.done:                               # fed only for its last token's row: here it is
                row.owes_last_row = False
                self._hand_back(row)
                return
            self._choose(row, output.logits[slot, query])
            if query < len(proposed) and proposed[query] != row.generated[-1]:
                row.lookahead = max(1, row.lookahead // 2)           # a wrong try: fewer next time
                return
            if not row.fed_next:
                return
            if query == len(proposed):
                if len(proposed) >= row.lookahead:
                    row.lookahead = min(LOOKAHEAD, 2 * row.lookahead)  # every try right: more next time
                return

    def _proposals(self, fed: list[bool]) -> list[list[int]]:
        """Per row, the tokens to try after its newest one (none for a row that stopped): as many for each as the
        step's budget (STEP_TOKENS) and the sliding window leave room for."""
        decoding = sum(1 for row in self.rows if not row.done)
        lookahead = min(LOOKAHEAD, STEP_TOKENS // max(1, decoding) - 1)
        if self.window is not None:                    # the plain steps still owed must fit after this one (fits)
            feeds = max(row.feeds_left() for row in self.rows)
            lookahead = min(lookahead, self.window - self.columns() - feeds - 2)
        return [self._proposal(row, min(lookahead, row.lookahead, row.limit - len(row.generated)))
                if feeding and not row.done else [] for row, feeding in zip(self.rows, fed)]

    def _proposal(self, row: _Row, count: int) -> list[int]:
        """Up to `count` tokens that follow, in the row's own prompt (after its cached prefix), the first place
        holding the line's last 3, 2 or 1 generated tokens: an answer copied from its context goes on as it."""
        if count <= 0:
            return []
        own = row.prompt[row.start:]
        for size in range(min(3, len(row.generated)), 0, -1):
            tail = row.generated[-size:]
            for at in range(len(own) - size):
                if own[at:at + size] == tail:
                    return own[at + size: at + size + count]
        return []

    # --- inside -----------------------------------------------------------------------------------------------

    def _own_prefix(self, job: LineJob, ids: list[int]) -> Prefix | None:
        """The job's demonstration set (longer than the shared prefix) when it is cached, or None: then its tokens
        run in the join with the job's own (one batched forward, not one forward per new set), and the join keeps
        the set for the next request (_keep_demonstration_set)."""
        own = request_prefix(self.model, self.tokenizer, job.request_prefix_text, ids, self.prefix, run_missing=False)
        return own if own is not None and own.ids[: self.cached] == self.prefix.ids else None

    def _keep_demonstration_set(self, row: _Row, output: Any, slot: int, column: int, query: int) -> None:
        """Cache the demonstration set of a row that ran it in its join (it was not cached): its keys and values
        are the join's, from `column` on in row `slot` of the output cache; its attention block is the prefix's
        block, then the join's rows from `query` on over the prefix and the set's own columns (every other column
        was blocked: weight 0). The same as a separate run of the set would give (PREFIXES.lookup)."""
        if not row.job.request_prefix_text or self._own_prefix(row.job, row.prompt) is not None:
            return                                     # no set, or a row before it in this join kept it
        set_ids = self.tokenizer(row.job.request_prefix_text).input_ids
        if not self.cached < len(set_ids) < len(row.prompt) or row.prompt[: len(set_ids)] != set_ids:
            return                                     # its tokens split apart from the prompt's: never cached
        count = len(set_ids) - self.cached
        cache = self.prefix.fresh_cache()                                              # (1, kv_head, cached, dim)
        for kept, ran in zip(cache.layers, output.cache.layers):
            kept.keys = torch.cat([kept.keys, ran.keys[slot:slot + 1, :, column:column + count]], dim=2)
            kept.values = torch.cat([kept.values, ran.values[slot:slot + 1, :, column:column + count]], dim=2)
        _set_lengths(cache, len(set_ids))                                              # (1, kv_head, p, dim)
        blocks = []
        for prefix_block, rows in zip(self.prefix.block, output.attentions):
            block = prefix_block.new_zeros((prefix_block.shape[0], len(set_ids), len(set_ids)))   # (head, p, p)
            block[:, : self.cached, : self.cached] = prefix_block
            ran = rows[slot, :, query:query + count]                                   # (head, count, columns)
            block[:, self.cached:, : self.cached] = ran[..., : self.cached]
            block[:, self.cached:, self.cached:] = ran[..., column:column + count]
            blocks.append(block)
        PREFIXES.store(self.model, self.tokenizer, row.job.request_prefix_text, Prefix(list(set_ids), cache, blocks))

    def _start(self, job: LineJob, ids: list[int]) -> int:
        """Where the job's computed tokens start: after its cached demonstration set, else after the prefix."""
        own = self._own_prefix(job, ids)
        return len(own.ids) if own is not None else self.cached

    def _mask(self, allowed: torch.Tensor) -> Any:
        """The additive mask of `allowed` (rows, 1, queries, columns); one tensor for every layer type (the batch
        fits the window: fits)."""
        dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed,
                                                                                          torch.finfo(dtype).min)
        return {"full_attention": mask, "sliding_attention": mask} if self.window else mask

    def _choose(self, row: _Row, logits: torch.Tensor) -> None:
        """The row's greedy token from its (vocab,) logits, after its constraint (as generate's greedy search)."""
        logits = logits.to(dtype=torch.float32)
        scores = logits[None].clone()                                                  # (1, vocab)
        if row.job.constraint is not None:
            scores = row.job.constraint(torch.tensor([row.prompt + row.generated], device=logits.device), scores)
        token = int(torch.argmax(scores[0]))
        row.generated.append(token)
        row.logprobs.append(float(torch.log_softmax(logits, dim=-1)[token]))
        if token in self.eos or ends_line(self.tokenizer, token):
            row.done = True
        elif len(row.generated) >= row.limit:
            row.done, row.owes_last_row = True, self.capture
        if not row.fed_next:
            self._hand_back(row)

    def _hand_back(self, row: _Row) -> None:
        text, kept = kept_line(self.tokenizer, row.generated, self.eos)
        attention = rows_from_generation(row.steps, row.prompt + row.generated) if self.capture else None
        self._finished.append((row.key, Line(text.rstrip(), row.logprobs[: len(kept)], attention)))
        row.handed_back = True
        row.steps = []

    def _add(self, rows: list[_Row], cache: Any, visible: torch.Tensor) -> None:
        """The new rows (their cache and visible columns) join the batch: the narrower side gets pad columns after
        the prefix, so every row has the same columns."""
        if self.cache is None or not self.rows:
            self.rows, self.cache, self.visible = rows, cache, visible
        else:
            assert self.visible is not None
            extra = visible.shape[1] - self.visible.shape[1]
            old_cache, new_cache = (_pad_columns(self.cache, self.cached, extra), cache) if extra > 0 else (
                self.cache, _pad_columns(cache, self.cached, -extra))
            old_visible, new_visible = (_pad_visible(self.visible, self.cached, extra), visible) if extra > 0 else (
                self.visible, _pad_visible(visible, self.cached, -extra))
            for old_layer, new_layer in zip(old_cache.layers, new_cache.layers):
                old_layer.keys = torch.cat([old_layer.keys, new_layer.keys], dim=0)
                old_layer.values = torch.cat([old_layer.values, new_layer.values], dim=0)
            self.rows, self.cache = self.rows + rows, old_cache
            self.visible = torch.cat([old_visible, new_visible], dim=0)
        self._leave()

    def _leave(self) -> None:
        """Handed-back rows leave the batch (up to MIN_ROWS rows stay, as fillers), then the columns no row still
        being fed sees."""
        if not self.rows:
            return
        feeding = [slot for slot, row in enumerate(self.rows) if row.fed_next]
        fillers = [slot for slot, row in enumerate(self.rows) if not row.fed_next]
        staying = sorted(feeding + fillers[: max(0, min(MIN_ROWS, len(self.rows)) - len(feeding))])
        if not feeding:
            staying = []
        if len(staying) < len(self.rows):
            self.rows = [self.rows[slot] for slot in staying]
            if not staying:
                self.cache, self.visible = None, None
                return
            assert self.visible is not None
            indices = torch.tensor(staying, device=self.visible.device)
            self.cache.batch_select_indices(indices)
            self.visible = self.visible[indices]
        assert self.visible is not None
        seen = self.visible[[slot for slot, row in enumerate(self.rows) if row.fed_next]].any(dim=0)  # (columns,)
        seen[: self.cached] = True
        if not bool(seen.all()):
            kept = torch.nonzero(seen).flatten()
            for layer in self.cache.layers:
                layer.keys = layer.keys.index_select(-2, kept)
                layer.values = layer.values.index_select(-2, kept)
            self.visible = self.visible[:, kept]
        _set_lengths(self.cache, self.visible.shape[1])


def _pad_columns(cache: Any, at: int, count: int) -> Any:
    """The cache with `count` zero key / value columns inserted at column `at` of every layer (blocked pads)."""
    if count > 0:
        for layer in cache.layers:
            for name in ("keys", "values"):
                states = getattr(layer, name)                                          # (rows, kv_head, C, dim)
                pads = states.new_zeros((*states.shape[:2], count, states.shape[3]))
                setattr(layer, name, torch.cat([states[:, :, :at], pads, states[:, :, at:]], dim=2))
    return cache


def _fill_columns(cache: Any, at: int, depth: int, own_prefixes: list[Prefix | None], filled: list[int]) -> None:
    """Append `depth` key / value columns to every layer of the (rows, kv_head, at, dim) cache: row r's last
    filled[r] of them are its own prefix's columns after `at` (its demonstration set's keys and values, computed
    at their positions once), the rest zeros (blocked)."""
    for index, layer in enumerate(cache.layers):
        for name in ("keys", "values"):
            states = getattr(layer, name)                                              # (rows, kv_head, at, dim)
            extra = states.new_zeros((states.shape[0], states.shape[1], depth, states.shape[3]))
            for row, (own, fill) in enumerate(zip(own_prefixes, filled)):
                if own is not None and fill:
                    extra[row, :, depth - fill:] = getattr(own.cache.layers[index], name)[0, :, at:at + fill]
            setattr(layer, name, torch.cat([states, extra], dim=2))                    # (rows, kv_head, at + D, dim)
    _set_lengths(cache, at + depth)


def _pad_visible(visible: torch.Tensor, at: int, count: int) -> torch.Tensor:
    if count <= 0:
        return visible
    pads = torch.zeros((visible.shape[0], count), dtype=torch.bool, device=visible.device)
    return torch.cat([visible[:, :at], pads, visible[:, at:]], dim=1)


def _set_lengths(cache: Any, columns: int) -> None:
    """After columns were added or dropped by hand: a sliding layer counts what it holds (inside the window, all)."""
    for layer in cache.layers:
        if layer.keys.shape[-2] != columns:
            raise RuntimeError(f"a cache layer holds {layer.keys.shape[-2]} columns, the batch {columns}")
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length = columns
