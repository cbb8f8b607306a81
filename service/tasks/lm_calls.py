"""The model calls behind few-shot tasks: scoring label continuations in one tree-masked forward, greedy lines
(optionally constrained to spans of a context), and the contextual-calibration probe, each capturing the attention
it computed on the way (service.attention.capture.CapturedRows). Hold the model's lock. Inside
`shared_model_calls`, label scoring and greedy lines may join other requests' in one batched call
(score_label_jobs here, service/tasks/lines_together.py:generate_line_jobs).
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch

from service.attention.capture import CapturedRows, eager_attention, rows_from_generation
from service.attention.prefix_cache import PREFIXES, Prefix
from service.heap import short_lived_tensors_in_heap

SENTIMENT_LABELS = ("positive", "negative")
CONTENT_FREE_INPUTS = ("N/A",)             # contextual calibration probe(s), averaged
SPAN_CANDIDATES_PER_STEP = 64               # constrained QA decoding looks this far down the ranking each step
# A sentence end with more text after it: a full-width 。！？, or . ! ? and a space, unless the word before the
# point is a capitalised word of 1–3 letters ("Dr. Smith", "U.S. Army", "St. Louis"), which is usually a title or
# an abbreviation, not a sentence end.
SENTENCE_BREAK = re.compile(r"[。！？]\s*\S|(?<!\b[A-Z])(?<!\b[A-Z][a-z])(?<!\b[A-Z][a-z][a-z])[.!?]\s+\S")


def encode(tokenizer: Any, text: str, device: torch.device) -> torch.Tensor:
    return tokenizer(text, return_tensors="pt").input_ids.to(device)                 # (1, tokens)


def token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def kernel_for(model: Any, capture_attention: bool) -> Any:
    """The eager kernel while capturing (it returns attention weights), else whatever the model runs on.
    Inside shared_model_calls it only remembers the choice: the kernel is switched where the model runs."""
    shared = _SHARED.get()
    if shared is not None:
        return shared.kernel(capture_attention)
    return eager_attention(model) if capture_attention else contextlib.nullcontext()


# Contextual-calibration log-probabilities per model (weakly held: a dropped model drops its entry), then per
# tokenizer and prompt prefix. The lock makes the check-and-fill atomic when calls come from several threads.
CALIBRATIONS: "weakref.WeakKeyDictionary[Any, dict[tuple[int, str], tuple[Any, torch.Tensor]]]" = (
    weakref.WeakKeyDictionary()
)
CALIBRATIONS_LOCK = threading.Lock()


def calibration(model: Any, tokenizer: Any, query_prefix: str, probe_block: Any) -> torch.Tensor:
    """Mean label log-probabilities (labels,) after `query_prefix + probe_block(probe)` for each content-free probe;
    computed once per model, tokenizer and prefix (a demonstration set)."""
    shared = _SHARED.get()
    if shared is None:
        return _calibration(model, tokenizer, query_prefix, probe_block)
    cached = _cached_calibration(model, tokenizer, query_prefix)
    if cached is not None:
        return cached
    with unshared(), kernel_for(model, shared.eager):    # runs at once, on the kernel the caller asked for
        return _calibration(model, tokenizer, query_prefix, probe_block)


def _cached_calibration(model: Any, tokenizer: Any, query_prefix: str) -> torch.Tensor | None:
    with CALIBRATIONS_LOCK:
        cached = CALIBRATIONS.get(model, {}).get((id(tokenizer), query_prefix))
    return cached[1] if cached is not None and cached[0]() is tokenizer else None


def _calibration(model: Any, tokenizer: Any, query_prefix: str, probe_block: Any) -> torch.Tensor:
    key = (id(tokenizer), query_prefix)
    with CALIBRATIONS_LOCK:
        per_model = CALIBRATIONS.setdefault(model, {})
        cached = per_model.get(key)
        if cached is not None and cached[0]() is tokenizer:
            return cached[1]
        probes = torch.stack([
            score_labels(model, tokenizer, query_prefix + probe_block(probe), SENTIMENT_LABELS,
                         capture_attention=False, prefix_text=query_prefix).logprobs
            for probe in CONTENT_FREE_INPUTS
        ]).mean(dim=0)                                                                      # (labels,)
        per_model[key] = (_weak_or_strong(tokenizer), probes)
        return probes


def _weak_or_strong(value: Any) -> Any:
    """A callable returning `value`: a weak reference where the type allows one."""
    try:
        return weakref.ref(value)
    except TypeError:
        return lambda: value


@dataclass
class LabelScores:
    """Label log-probabilities from one forward, and the attention rows to show for each label."""

    logprobs: torch.Tensor                        # (labels,)
    prompt_ids: list[int]
    label_ids: list[list[int]]
    label_starts: list[int]                       # where each label's tokens start in the tree sequence
    attentions: Any = None                        # per layer (1, head, Q, Q) over the tree sequence, or None

    def rows_for(self, label: int) -> CapturedRows | None:
        """The attention of prompt + that label's tokens, as if they had been the only sequence."""
        if self.attentions is None:
            return None
        prompt_length = len(self.prompt_ids)
        start = self.label_starts[label]
        prompt_block = [layer[0, :, :prompt_length, :prompt_length] for layer in self.attentions]  # (head, P, P)
        later_rows = []
        for offset in range(len(self.label_ids[label])):
            keys = list(range(prompt_length)) + list(range(start, start + offset + 1))  # prompt, then the branch
            later_rows.append([layer[0, :, start + offset, keys] for layer in self.attentions])  # (head, keys)
        return CapturedRows(self.prompt_ids + self.label_ids[label], prompt_block, later_rows)


@dataclass
class LabelTree:
    """A prompt followed by every label's tokens as sibling branches (what score_labels runs in one forward)."""

    prompt_ids: list[int]                         # (P,)
    label_ids: list[list[int]]                    # per label, its tokens
    label_starts: list[int]                       # where each label's tokens start in `sequence`
    sequence: list[int]                           # (Q,) prompt, then each label's tokens
    positions: list[int]                          # (Q,) a branch token sits where it would right after the prompt
    branch: list[int]                             # (Q,) -1: the shared prompt; else the label the token belongs to

    @property
    def first_logit(self) -> int:
        """The prompt's last position: its logits predict every label's first token."""
        return len(self.prompt_ids) - 1

    @property
    def scoring_positions(self) -> list[int]:
        """Positions in `sequence` whose logits predict a label token (sorted, each once): the prompt's last, then
        each label's tokens but its last. Only these go through the (vocab-wide) output layer: for one-token labels
        that is one row, not 1 + labels."""
        positions = {self.first_logit}
        for ids, start in zip(self.label_ids, self.label_starts):
            positions.update(start + offset for offset in range(len(ids) - 1))
        return sorted(positions)


def label_tree(tokenizer: Any, prompt: str, labels: tuple[str, ...]) -> LabelTree:
    """The tree sequence of `prompt` and " label" for each label."""
    prompt_ids = tokenizer(prompt, return_tensors="pt").input_ids[0].tolist()        # (P,)
    label_ids = [tokenizer(" " + label, add_special_tokens=False).input_ids for label in labels]
    prompt_length = len(prompt_ids)
    sequence = list(prompt_ids)
    positions = list(range(prompt_length))
    branch = [-1] * prompt_length
    label_starts = []
    for index, ids in enumerate(label_ids):
        label_starts.append(len(sequence))
        sequence += ids
        positions += range(prompt_length, prompt_length + len(ids))
        branch += [index] * len(ids)
    return LabelTree(prompt_ids, label_ids, label_starts, sequence, positions, branch)


def score_labels(
    model: Any, tokenizer: Any, prompt: str, labels: tuple[str, ...], capture_attention: bool,
    prefix_text: str | None = None,
) -> LabelScores:
    """log P(" label" | prompt) for each label (mean over its tokens) from ONE forward.

    The sequence is the prompt followed by every label's tokens as sibling branches: a label's tokens see the
    prompt and their own branch only, at the positions they would have right after the prompt, so each branch
    computes exactly what a separate forward over prompt + label would (and its attention rows, when captured).
    With `prefix_text` (the instruction and demonstrations the prompt starts with), that prefix runs once per
    model and is reused (service/attention/prefix_cache.py): the forward covers the query and the labels only.
    Inside shared_model_calls the call is handed over as a LabelJob and may share its forward with others.
    """
    shared = _SHARED.get()
    if shared is not None:
        return shared.submit(LabelJob(model, tokenizer, prompt, tuple(labels), capture_attention, prefix_text))
    tree = label_tree(tokenizer, prompt, labels)
    prefix = PREFIXES.lookup(model, tokenizer, prefix_text, tree.prompt_ids) if prefix_text else None
    return _score_tree(model, tree, prefix, capture_attention)


def _score_tree(model: Any, tree: LabelTree, prefix: Prefix | None, capture_attention: bool) -> LabelScores:
    """One forward over `tree` (its prompt's `prefix` taken from the cache when given)."""
    device = model.device
    masks = _tree_masks(model, tree.positions, tree.branch)
    start = len(prefix.ids) if prefix is not None else 0                               # tokens already cached
    with torch.inference_mode():
        output = model(
            input_ids=torch.tensor([tree.sequence[start:]], device=device),             # (1, Q - start)
            position_ids=torch.tensor([tree.positions[start:]], device=device),         # (1, Q - start)
            attention_mask=_mask_rows(model, masks, start),
            cache=prefix.fresh_cache() if prefix is not None else None,
            use_cache=prefix is not None, output_attentions=capture_attention,
            logits_to_keep=torch.tensor([position - start for position in tree.scoring_positions], device=device),
        )
        attentions = output.attentions if capture_attention else None
        if attentions is not None and prefix is not None:
            attentions = prefix.full_attention(attentions)                             # per layer (1, head, Q, Q)
        logprobs = _label_logprobs(output.logits[0], tree)
    return LabelScores(logprobs.cpu(), tree.prompt_ids, tree.label_ids, tree.label_starts, attentions)


def _label_logprobs(logits: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """(labels,) mean log-probability of each label's tokens, from the logits at its tree's scoring_positions."""
    logprobs_at = torch.log_softmax(logits.float(), dim=-1)                            # (scoring positions, vocab)
    row_of = {position: row for row, position in enumerate(tree.scoring_positions)}
    scores = []
    for ids, start in zip(tree.label_ids, tree.label_starts):
        predictors = [tree.first_logit] + [start + offset for offset in range(len(ids) - 1)]  # who predicts each
        scores.append(sum(logprobs_at[row_of[position], token] for position, token in zip(predictors, ids))
                      / len(ids))
    return torch.stack(scores)


# --- model calls shared between requests -------------------------------------------------------------------

@dataclass
class LabelJob:
    """One score_labels call, waiting to share a forward with other requests' calls (score_label_jobs)."""

    model: Any
    tokenizer: Any
    prompt: str
    labels: tuple[str, ...]
    capture_attention: bool
    prefix_text: str | None

    def twin_key(self) -> Hashable:
        """Equal for jobs that get the same scores: the same model, tokenizer, prompt and labels (batching.py)."""
        return ("labels", id(self.model), id(self.tokenizer), self.prompt, self.labels, self.capture_attention,
                self.prefix_text)


@dataclass
class LineJob:
    """One generate_line call, waiting to share its forwards with other requests' calls (generate_line_jobs)."""

    model: Any
    tokenizer: Any
    prompt: str
    max_new_tokens: int
    constraint: Any
    capture_attention: bool
    prefix_text: str | None                       # the prefix every request shares (a LineBatch's)
    request_prefix_text: str | None = None        # longer: this request's demonstration set, cached per set

    def twin_key(self) -> Hashable | None:
        """Equal for jobs that get the same line (greedy: the same model, prompt, limit and constraint); None for a
        constraint that cannot say when it equals another (batching.py)."""
        constraint = None
        if self.constraint is not None:
            if not hasattr(self.constraint, "twin_key"):
                return None
            constraint = self.constraint.twin_key()
        return ("line", id(self.model), id(self.tokenizer), self.prompt, self.max_new_tokens, constraint,
                self.capture_attention, self.prefix_text, self.request_prefix_text)


class _SharedCalls:
    """What shared_model_calls set up for this thread: where jobs go, and the kernel the caller asked for."""

    def __init__(self, submit: Callable[[Any], Any]) -> None:
        self.submit = submit
        self.eager = False

    @contextlib.contextmanager
    def kernel(self, eager: bool) -> Iterator[None]:
        before, self.eager = self.eager, eager
        try:
            yield
        finally:
            self.eager = before


_SHARED: ContextVar[_SharedCalls | None] = ContextVar("shared_model_calls", default=None)


@contextlib.contextmanager
def shared_model_calls(submit: Callable[[Any], Any]) -> Iterator[None]:
    """Within this block (this thread, holding the model's lock) each score_labels call becomes a LabelJob and each
    generate_line call a LineJob, handed to `submit`, which returns its LabelScores or Line: a batcher
    (service/backends/batching.py) that may let go of the lock while other requests queue theirs, then runs them
    together (score_label_jobs, generate_line_jobs). So kernel_for switches nothing here (the kernel stays as it is
    while the lock is let go): the batch switches it for its forwards, and the calibration probe, when it has to
    run, on the kernel kernel_for was asked for."""
    token = _SHARED.set(_SharedCalls(submit))
    try:
        yield
    finally:
        _SHARED.reset(token)


@contextlib.contextmanager
def unshared() -> Iterator[None]:
    """Model calls here run at once, on this thread, which holds the lock."""
    token = _SHARED.set(None)
    try:
        yield
    finally:
        _SHARED.reset(token)


def score_label_jobs(jobs: list[LabelJob]) -> list[LabelScores]:
    """Each job's LabelScores, equal to what score_labels gives it alone; the jobs on one model, tokenizer, label
    set and cached prefix run as ONE batched forward (score_trees_together). Hold the model's lock."""
    results: list[LabelScores | None] = [None] * len(jobs)
    groups: dict[tuple[int, int, tuple[str, ...], bool, str | None], list[int]] = {}
    for index, job in enumerate(jobs):
        key = (id(job.model), id(job.tokenizer), job.labels, job.capture_attention, job.prefix_text)
        groups.setdefault(key, []).append(index)
    with unshared():
        for indices in groups.values():
            first = jobs[indices[0]]
            model, tokenizer = first.model, first.tokenizer
            trees = [label_tree(tokenizer, jobs[index].prompt, first.labels) for index in indices]
            prefixes = [PREFIXES.lookup(model, tokenizer, first.prefix_text, tree.prompt_ids)
                        if first.prefix_text else None for tree in trees]
            together = [position for position, prefix in enumerate(prefixes) if prefix is not None]
            with kernel_for(model, first.capture_attention):
                if len(together) > 1:   # prompts that start with the one cached prefix
                    scored = score_trees_together(model, [trees[position] for position in together],
                                                  prefixes[together[0]], first.capture_attention)
                    for position, scores in zip(together, scored):
                        results[indices[position]] = scores
                for position, index in enumerate(indices):
                    if results[index] is None:
                        results[index] = _score_tree(model, trees[position], prefixes[position],
                                                     first.capture_attention)
    return results  # type: ignore[return-value]  (every slot is filled above)


def score_trees_together(model: Any, trees: list[LabelTree], prefix: Prefix,
                         capture_attention: bool) -> list[LabelScores]:
    """_score_tree of each tree, all in one forward over the cached `prefix` expanded to the batch.

    Each request's own tokens (its query and the label branches: n = Q - p) are right-aligned in a block of the
    longest one's width W, pads first; its mask rows are the ones it would have alone, at those columns, every pad
    blocked, so its rows compute what they would alone. Only each tree's scoring positions (same labels: same
    count) go through the output layer, and its attention rows are cut back to (n, cached + n) before the prefix
    block joins them.
    """
    device = model.device
    start = len(prefix.ids)
    blocks = [len(tree.sequence) - start for tree in trees]                           # n per request
    width = max(blocks)                                                                # W
    scoring = len(trees[0].scoring_positions)
    if any(len(tree.scoring_positions) != scoring or tree.prompt_ids[:start] != prefix.ids for tree in trees):
        raise ValueError("trees scored together need the same labels and the cached prefix")
    pad = 0                                                                            # any id: pads are masked
    input_ids = torch.full((len(trees), width), pad, dtype=torch.long, device=device)  # (batch, W)
    position_ids = torch.full((len(trees), width), start, dtype=torch.long, device=device)  # (batch, W)
    scoring_columns = torch.tensor([[width - own + position - start for position in tree.scoring_positions]
                                    for tree, own in zip(trees, blocks)], device=device)  # (batch, scoring)
    row_masks = []
    for row, (tree, own) in enumerate(zip(trees, blocks)):
        input_ids[row, width - own:] = torch.tensor(tree.sequence[start:], device=device)
        position_ids[row, width - own:] = torch.tensor(tree.positions[start:], device=device)
        row_masks.append(_mask_rows(model, _tree_masks(model, tree.positions, tree.branch), start))
    cache = prefix.fresh_cache()
    cache.batch_repeat_interleave(len(trees))                                          # (batch, kv_head, p, dim)
    with torch.inference_mode():
        with short_lived_tensors_in_heap():
            output = model(
                input_ids=input_ids, position_ids=position_ids,
                attention_mask=_right_aligned(row_masks, blocks, width), cache=cache, use_cache=True,
                output_attentions=capture_attention, logits_to_keep=scoring_columns,
            )
        results = []
        for row, (tree, own) in enumerate(zip(trees, blocks)):
            attentions = None
            if capture_attention:
                attentions = prefix.full_attention([_own_rows(layer, row, own, width)
                                                    for layer in output.attentions])   # per layer (1, head, Q, Q)
            logprobs = _label_logprobs(output.logits[row], tree)                  # logits: (batch, scoring, vocab)
            results.append(LabelScores(logprobs.cpu(), tree.prompt_ids, tree.label_ids, tree.label_starts,
                                       attentions))
    return results


def _right_aligned(row_masks: list[Any], blocks: list[int], width: int) -> Any:
    """One (batch, 1, W, cached + W) mask from each request's (1, 1, n, cached + n) rows (see _mask_rows): its
    rows at the bottom, its cached columns first and its own columns last, pads blocked (a dict per layer type)."""
    if isinstance(row_masks[0], dict):
        return {name: _right_aligned([masks[name] for masks in row_masks], blocks, width) for name in row_masks[0]}
    cached = row_masks[0].shape[-1] - blocks[0]            # keys in the cache (a sliding layer keeps fewer)
    first = row_masks[0]
    batch = torch.full((len(row_masks), 1, width, cached + width), torch.finfo(first.dtype).min,
                       dtype=first.dtype, device=first.device)                        # (batch, 1, W, cached + W)
    for row, (mask, own) in enumerate(zip(row_masks, blocks)):
        batch[row, 0, width - own:, :cached] = mask[0, 0, :, :cached]                  # (n, cached)
        batch[row, 0, width - own:, cached + width - own:] = mask[0, 0, :, cached:]    # (n, n)
    return batch


def _own_rows(layer: torch.Tensor, row: int, own: int, width: int) -> torch.Tensor:
    """(1, head, n, cached + n): one request's attention rows from a batched (batch, head, W, cached + W) layer,
    without the pad rows and columns (their weights are exactly 0 under the blocked mask)."""
    cached = layer.shape[-1] - width
    rows = layer[row:row + 1, :, width - own:, :]                                      # (1, head, n, cached + W)
    return torch.cat([rows[..., :cached], rows[..., cached + width - own:]], dim=-1)   # (1, head, n, cached + n)


def _mask_rows(model: Any, masks: Any, start: int) -> Any:
    """The rows of the (1, 1, Q, Q) tree masks from `start` on, for a forward over a cache holding `start` tokens.
    A sliding-window layer's cache holds only its last window - 1 tokens, so its mask keeps the last columns."""
    if start == 0:
        return masks
    if not isinstance(masks, dict):
        return masks[:, :, start:, :]                                                  # (1, 1, Q - start, Q)
    window = getattr(getattr(model.config, "get_text_config", lambda: model.config)(), "sliding_window", None)
    kept = min(start, window - 1) if window else start                                 # cached keys per sliding layer
    total = masks["full_attention"].shape[-1]
    return {"full_attention": masks["full_attention"][:, :, start:, :],
            "sliding_attention": masks["sliding_attention"][:, :, start:, start - kept: total]}


def _tree_masks(model: Any, positions: list[int], branch: list[int]) -> Any:
    """Additive (1, 1, Q, Q) masks for the branch sequence: causal, a branch sees only the prompt and itself.

    Models with sliding-window layers (Gemma-3) get a dict per layer type, the window applied on positions.
    """
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    device = model.device
    position = torch.tensor(positions, device=device)
    owner = torch.tensor(branch, device=device)
    index = torch.arange(len(positions), device=device)
    visible = (index[None, :] <= index[:, None]) & (
        (owner[None, :] == -1) | (owner[None, :] == owner[:, None])
    )                                                                                  # (query, key)
    blocked = torch.finfo(dtype).min

    def additive(allowed: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, blocked)
        return mask[None, None]                                                        # (1, 1, query, key)

    config = getattr(model.config, "get_text_config", lambda: model.config)()
    layer_types = set(getattr(config, "layer_types", None) or ())
    window = getattr(config, "sliding_window", None)
    if "sliding_attention" in layer_types and window:
        in_window = position[None, :] > position[:, None] - window                     # (query, key)
        return {"full_attention": additive(visible), "sliding_attention": additive(visible & in_window)}
    return additive(visible)


@dataclass
class Line:
    text: str                                     # the completion up to the newline, right-stripped
    logprobs: list[float]                         # log-prob of each kept token
    attention: CapturedRows | None


def generate_line(
    model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, constraint: Any = None,
    capture_attention: bool = False, prefix_text: str | None = None, request_prefix_text: str | None = None,
) -> Line:
    """Greedy continuation of `prompt` up to the first newline (excluded) or EOS; also each kept token's log-prob.

    `constraint`, when given, is a transformers LogitsProcessor that masks tokens (e.g. ContextSpanConstraint).
    With capture_attention the generation runs on the eager kernel and returns its attention: the prefill's
    (prompt × prompt) block and one row per decoding step, over the prompt and the kept tokens. With `prefix_text`
    the prompt's prefix is reused from the prefix cache, so the prefill covers the query only; `request_prefix_text`
    (a longer prefix: the demonstrations chosen for this input after the shared ones) is cached too, per set
    (request_prefix).
    Inside shared_model_calls the call is handed over as a LineJob and may share its forwards with others.
    """
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

    shared = _SHARED.get()
    if shared is not None:
        return shared.submit(LineJob(model, tokenizer, prompt, max_new_tokens, constraint, capture_attention,
                                     prefix_text, request_prefix_text))
    input_ids = encode(tokenizer, prompt, model.device)                              # (1, prompt_tokens)
    prompt_length = input_ids.shape[1]
    prefix = PREFIXES.lookup(model, tokenizer, prefix_text, input_ids[0].tolist()) if prefix_text else None
    prefix = request_prefix(model, tokenizer, request_prefix_text, input_ids[0].tolist(), prefix) or prefix
    eos = stop_ids(model, tokenizer)
    config = GenerationConfig(
        max_new_tokens=max(1, int(max_new_tokens)), do_sample=False,
        eos_token_id=eos or None, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
        else (eos[0] if eos else 0),
        output_logits=True, return_dict_in_generate=True, output_attentions=capture_attention,
    )
    with torch.inference_mode(), kernel_for(model, capture_attention):
        output = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config,
            stopping_criteria=StoppingCriteriaList([_StopAtNewline(tokenizer, prompt_length)]),
            logits_processor=LogitsProcessorList([constraint] if constraint is not None else []),
            cache=prefix.fresh_cache() if prefix is not None else None,
        )
        generated = output.sequences[0, prompt_length:].tolist()                       # (new_tokens,)
        logprobs = [
            float(torch.log_softmax(step_logits[0].float(), dim=-1)[token])           # step_logits: (1, vocab)
            for step_logits, token in zip(output.logits, generated)
        ]
        text, kept = kept_line(tokenizer, generated, eos)
        attention = None
        if capture_attention:
            sequence = output.sequences[0].tolist()                                    # prompt + generated ids
            needs_last_row = len(kept) == len(generated)          # no stop token after the kept ones
            steps = list(output.attentions)
            if prefix is not None:                                # the prefill covered the query only
                steps[0] = prefix.full_attention(steps[0])        # per layer (1, head, P, P)
            attention = rows_from_generation(steps, sequence, output.cache if needs_last_row else None)
    return Line(text.rstrip(), logprobs[: len(kept)], attention)


def request_prefix(model: Any, tokenizer: Any, request_prefix_text: str | None, prompt_ids: list[int],
                   shared: Prefix | None, run_missing: bool = True) -> Prefix | None:
    """The cached prefix of this request's demonstration set (computed once per set, after the `shared` one), or
    None: no such text, no shared prefix under it, its tokens split apart from the prompt's, or (run_missing=False)
    not cached yet."""
    if not request_prefix_text or shared is None:
        return None
    return PREFIXES.lookup(model, tokenizer, request_prefix_text, prompt_ids, extends=shared, run_missing=run_missing)


def stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The token ids that end a line besides the newline: the tokenizer's and the model's EOS ids."""
    return [i for i in {tokenizer.eos_token_id, *_as_list(getattr(model.generation_config, "eos_token_id", None))}
            if i is not None]


def kept_line(tokenizer: Any, generated: list[int], eos: list[int]) -> tuple[str, list[int]]:
    """(text up to the first newline, the tokens kept for it) of a greedy line's generated ids: what follows an
    EOS is dropped, and the token that brought the newline too."""
    kept: list[int] = []
    for token in generated:
        if token in eos:
            break
        kept.append(token)
    text = tokenizer.decode(kept, skip_special_tokens=True)
    if "\n" in text:
        text = text[: text.index("\n")]
        kept = kept[:-1]
    return text, kept


def ends_line(tokenizer: Any, token: int) -> bool:
    """Whether a newly generated token ends the line (it holds a newline): the stopping rule of _StopAtNewline."""
    return "\n" in tokenizer.decode([token])


class ContextSpanConstraint:
    """Logits processor: the answer so far must stay a (case-insensitive) substring of the context, inside one of
    its sentences.

    Each step keeps, among the SPAN_CANDIDATES_PER_STEP most likely tokens, those that extend the answer to another
    substring of the context that does not run past a sentence end (SENTENCE_BREAK: a short answer is a phrase of
    one sentence; without this, "什么是量子计算？" was answered with the whole two-sentence context), plus a
    newline/EOS once the answer is non-empty; every other token is masked.
    Raw logits stay available (output_logits) for scoring. Greedy decoding then picks the best allowed token.
    """

    def __init__(self, tokenizer: Any, context: str, prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.context = context.lower()
        self.prompt_length = prompt_length
        self.stop_ids = {i for i in (tokenizer.eos_token_id,) if i is not None}

    def twin_key(self) -> Hashable:
        """Equal for constraints that mask alike: the same tokenizer, context and prompt length."""
        return ("context span", id(self.tokenizer), self.context, self.prompt_length)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[0, self.prompt_length:].tolist()                           # (new_tokens,)
        answer_so_far = self.tokenizer.decode(generated, skip_special_tokens=True).lstrip()
        top = torch.topk(scores[0], k=min(SPAN_CANDIDATES_PER_STEP, scores.shape[-1])).indices.tolist()
        allowed = []
        for token in top:
            if token in self.stop_ids:
                if answer_so_far:
                    allowed.append(token)
                continue
            text = self.tokenizer.decode(generated + [token], skip_special_tokens=True).lstrip()
            line, newline, _ = text.partition("\n")
            if newline and answer_so_far and line.rstrip().lower() == answer_so_far.rstrip().lower():
                allowed.append(token)                                                  # a clean stop
            elif not newline and line and line.lower() in self.context and not SENTENCE_BREAK.search(line):
                allowed.append(token)
            elif not newline and not line and not generated:
                allowed.append(token)                         # a bare leading space ("▁") before the answer
        if not allowed:                 # nothing in reach extends a span: end the answer (an empty one: the best token)
            allowed = sorted(self.stop_ids) if answer_so_far and self.stop_ids else top[:1]
        mask = torch.full_like(scores, float("-inf"))                                  # (1, vocab)
        mask[0, allowed] = 0.0
        return scores + mask


class _StopAtNewline:
    """Stopping criterion: the newest token contains a newline (each few-shot answer is one line)."""

    def __init__(self, tokenizer: Any, prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        done = input_ids.shape[1] > self.prompt_length and ends_line(self.tokenizer, int(input_ids[0, -1]))
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
