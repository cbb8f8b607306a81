"""Ask requests that wait together share one decoding loop (service/tasks/lines_together.py), and each gets exactly
the answer, scores and attention it would get alone: constrained or not, stopped by a newline or by its own token
limit; lines that do not fit the sliding window run alone; a bad request fails alone."""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pytest
import torch

from service import ModelService
from service.backends.fewshot import run_shared_jobs
from service.errors import InvalidInputError
from service.models.loading import prepare_model
from service.tasks import fewshot as prompts
from service.tasks import lines_together, lm_calls
from test_batching import together

CONTEXTS = ["The cat sat on the mat.", "北京是中国的首都，也是一座历史名城。",
            "Paris is big and old and has many bridges over the river Seine, and the Louvre is there too.",
            "Ada wrote the first program."]


@pytest.fixture(scope="module")
def fewshot() -> ModelService:
    service = ModelService("tiny-fewshot", max_attention_tokens=1024)
    service.answer(CONTEXTS[0], "Where did the cat sit?")           # the prefix, once
    return service


@pytest.fixture(scope="module")
def wide_window(fewshot: ModelService) -> Any:
    """The tiny few-shot Gemma-3 with its weights, but a 512-token sliding window like the real model's (the tiny
    one's is 16, so its prompts never fit and run alone)."""
    import transformers

    loaded = fewshot.backend.model("fewshot")
    config = copy.deepcopy(loaded.model.config)
    config.sliding_window = 512
    model = transformers.Gemma3ForCausalLM._from_config(config, attn_implementation="sdpa")
    model.load_state_dict(loaded.model.state_dict())
    return prepare_model(model, "cpu"), loaded.tokenizer


def line_jobs(model: Any, tokenizer: Any, capture: bool = True) -> list[lm_calls.LineJob]:
    """QA-shaped jobs of different lengths over one prefix: constrained and not, with different token limits."""
    prefix = prompts.QA_INSTRUCTION
    jobs = []
    for index, context in enumerate(CONTEXTS):
        prompt = f"{prefix}Text: {context}\nQuestion: what is it?\nAnswer:"
        constraint = (lm_calls.ContextSpanConstraint(tokenizer, context, len(tokenizer(prompt).input_ids))
                      if index != 1 else None)
        jobs.append(lm_calls.LineJob(model, tokenizer, prompt, 2 + 4 * index, constraint, capture, prefix))
    return jobs


def demonstration_set_jobs(model: Any, tokenizer: Any) -> list[lm_calls.LineJob]:
    """QA jobs over one shared prefix, each with a demonstration set after it (two share one, one has none)."""
    shared = prompts.QA_INSTRUCTION
    sets = [prompts._qa_block("Tom has a red bike.", "What colour is it?", "red") + "\n",
            prompts._qa_block("长城很长。", "什么很长？", "长城") + "\n"]
    jobs = []
    for index, context in enumerate(CONTEXTS):
        demonstrations = shared + (sets[index % 2] if index < 3 else "")
        prompt = f"{demonstrations}Text: {context}\nQuestion: what is it?\nAnswer:"
        constraint = lm_calls.ContextSpanConstraint(tokenizer, context, len(tokenizer(prompt).input_ids))
        jobs.append(lm_calls.LineJob(model, tokenizer, prompt, 3 + 2 * index, constraint, True, shared,
                                     demonstrations if index < 3 else None))
    return jobs


def alone(job: lm_calls.LineJob) -> lm_calls.Line:
    line = lm_calls.generate_line(job.model, job.tokenizer, job.prompt, job.max_new_tokens, job.constraint,
                                  job.capture_attention, job.prefix_text, job.request_prefix_text)
    if line.attention is not None and line.attention.pending is not None:
        with lm_calls.kernel_for(job.model, True):
            line.attention.feed_pending(job.model)            # the row a view asks for: compare it too
    return line


def assert_same_line(one: lm_calls.Line, many: lm_calls.Line) -> None:
    assert many.text == one.text
    np.testing.assert_allclose(many.logprobs, one.logprobs, atol=1e-5)
    if one.attention is None:
        assert many.attention is None
        return
    assert many.attention.token_ids == one.attention.token_ids and many.attention.pending is None
    for layer_one, layer_many in zip(one.attention.prompt_block, many.attention.prompt_block):   # (head, P, P)
        assert layer_one.shape == layer_many.shape and (layer_one - layer_many).abs().max() < 1e-5
    assert len(many.attention.later_rows) == len(one.attention.later_rows)
    for row_one, row_many in zip(one.attention.later_rows, many.attention.later_rows):        # per layer (head, keys)
        for layer_one, layer_many in zip(row_one, row_many):
            assert layer_one.shape == layer_many.shape and (layer_one - layer_many).abs().max() < 1e-5


def counted_loops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every decoding loop generate_line_jobs starts from now on (appended as each starts)."""
    loops: list[int] = []
    monkeypatch.setattr(lines_together, "generate_lines_together",
                        lambda *args, real=lines_together.generate_lines_together: loops.append(len(args[2]))
                        or real(*args))
    return loops


@pytest.mark.parametrize("capture", [True, False])
def test_the_batched_loop_gives_each_line_what_it_gets_alone(fewshot: ModelService, wide_window: Any,
                                                            capture: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = wide_window
    jobs = line_jobs(model, tokenizer, capture)
    loops = counted_loops(monkeypatch)
    with fewshot.backend.model("fewshot").lock, torch.inference_mode():
        expected = [alone(job) for job in jobs]
        batched = lines_together.generate_line_jobs(jobs)
    assert loops == [len(jobs)]                                # one loop for all four
    limits_hit = sum(len(line.logprobs) == job.max_new_tokens for line, job in zip(expected, jobs))
    assert limits_hit >= 1                                     # a line that ends at its limit (its last row owed)
    for one, many in zip(expected, batched):
        assert_same_line(one, many)


def test_lines_with_their_own_cached_demonstrations_share_one_loop_and_equal_the_whole_prompts_pass(
        fewshot: ModelService, wide_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.attention.prefix_cache import PREFIXES

    model, tokenizer = wide_window
    jobs = demonstration_set_jobs(model, tokenizer)
    whole = [lm_calls.LineJob(job.model, job.tokenizer, job.prompt, job.max_new_tokens, job.constraint, True, None)
             for job in jobs]                                   # no prefix at all: one pass over each prompt
    loops = counted_loops(monkeypatch)
    with fewshot.backend.model("fewshot").lock, torch.inference_mode():
        expected = [alone(job) for job in whole]
        by_itself = [alone(job) for job in jobs]              # each on its cached set
        sets = {(id(tokenizer), job.request_prefix_text) for job in jobs if job.request_prefix_text}
        assert len(sets) == 2 and sets <= set(PREFIXES._entries[model])       # each set cached, once
        misses = PREFIXES.misses
        batched = lines_together.generate_line_jobs(jobs)
        assert PREFIXES.misses == misses                       # the loop reuses them
    assert loops == [len(jobs)]                                # one loop, whatever the sets
    for one, itself, many in zip(expected, by_itself, batched):
        assert_same_line(one, itself)
        assert_same_line(one, many)


def test_demonstration_sets_not_cached_run_in_the_join_and_are_kept_as_a_run_of_their_own_would_give(
        fewshot: ModelService, wide_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.attention import prefix_cache
    from service.attention.prefix_cache import PREFIXES, PrefixCache

    model, tokenizer = wide_window
    jobs = demonstration_set_jobs(model, tokenizer)
    whole = [lm_calls.LineJob(job.model, job.tokenizer, job.prompt, job.max_new_tokens, job.constraint, True, None)
             for job in jobs]
    runs: list[int] = []                                       # the ids length of every prefix run on its own
    monkeypatch.setattr(prefix_cache, "_run_prefix", lambda model, ids, shorter=None, real=prefix_cache._run_prefix:
                        runs.append(len(ids)) or real(model, ids, shorter))
    loops = counted_loops(monkeypatch)
    with fewshot.backend.model("fewshot").lock, torch.inference_mode():
        expected = [alone(job) for job in whole]
        PREFIXES.clear()
        runs.clear()
        batched = lines_together.generate_line_jobs(jobs)
        shared_ids = tokenizer(jobs[0].prefix_text).input_ids
        assert runs == [len(shared_ids)]                      # the shared prefix only: both sets ran in the join
        assert loops == [len(jobs)]
        for one, many in zip(expected, batched):
            assert_same_line(one, many)
        sets = sorted({job.request_prefix_text for job in jobs if job.request_prefix_text})
        assert len(sets) == 2
        for text in sets:
            kept = PREFIXES._entries[model][(id(tokenizer), text)]
            ran = PrefixCache().lookup(model, tokenizer, text, tokenizer(text + "Text: x").input_ids)
            assert kept.ids == ran.ids
            for mine, theirs in zip(kept.block, ran.block):                         # (head, p, p)
                assert mine.shape == theirs.shape and (mine - theirs).abs().max() < 1e-5
            for mine, theirs in zip(kept.cache.layers, ran.cache.layers):            # (1, kv_head, p, dim)
                assert mine.keys.shape == theirs.keys.shape and (mine.keys - theirs.keys).abs().max() < 1e-5
                assert (mine.values - theirs.values).abs().max() < 1e-5
        runs.clear()
        again = lines_together.generate_line_jobs(jobs)        # now on the kept sets: no run, the same lines
        assert runs == []
    for one, many in zip(expected, again):
        assert_same_line(one, many)


@pytest.mark.parametrize("guess", ["right", "wrong at the third", "none"])
def test_tokens_tried_ahead_in_one_step_give_the_lines_of_one_token_a_step_and_right_ones_save_steps(
        fewshot: ModelService, wide_window: Any, monkeypatch: pytest.MonkeyPatch, guess: str) -> None:
    """A step feeds each row the tokens it proposes after its newest one; whatever the proposals, every line, its
    log-probs and attention rows equal the line alone; right proposals take several tokens a step."""
    model, tokenizer = wide_window
    jobs = line_jobs(model, tokenizer)
    generated: dict[Any, list[int]] = {}
    hand_back = lines_together.LineBatch._hand_back
    monkeypatch.setattr(lines_together.LineBatch, "_hand_back",
                        lambda batch, row: generated.setdefault(row.key, list(row.generated)) and hand_back(batch, row))

    def proposal(batch: Any, row: Any, count: int) -> list[int]:          # the line's own next tokens, or wrong ones
        ahead = generated[row.key][len(row.generated): len(row.generated) + count]
        if guess == "wrong at the third" and len(ahead) >= 3:
            ahead[2] = (ahead[2] + 1) % model.config.vocab_size
        return ahead if guess != "none" else []

    steps = []
    step = lines_together.LineBatch.step
    monkeypatch.setattr(lines_together.LineBatch, "step", lambda batch: steps.append(1) or step(batch))
    with fewshot.backend.model("fewshot").lock, torch.inference_mode():
        expected = [alone(job) for job in jobs]
        with monkeypatch.context() as plain:
            plain.setattr(lines_together, "LOOKAHEAD", 0)
            lines_together.generate_line_jobs(jobs)             # each line's tokens, one a step
        one_a_step = len(steps)
        monkeypatch.setattr(lines_together.LineBatch, "_proposal", proposal)
        batched = lines_together.generate_line_jobs(jobs)
    for one, many in zip(expected, batched):
        assert_same_line(one, many)
    ahead = len(steps) - one_a_step
    longest = max(len(tokens) for tokens in generated.values())
    assert one_a_step >= longest - 1
    if guess == "right":
        assert ahead <= one_a_step // 2
    elif guess == "none":
        assert ahead == one_a_step
    else:
        assert ahead < one_a_step


def test_lines_that_outgrow_the_sliding_window_run_alone_with_the_same_answers(
        fewshot: ModelService, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = fewshot.backend.model("fewshot")                  # window 16: these prompts do not fit
    jobs = line_jobs(loaded.model, loaded.tokenizer)
    monkeypatch.setattr(lines_together, "generate_lines_together",
                        lambda *args: pytest.fail("a batch past the window ran together"))
    with loaded.lock, torch.inference_mode():
        expected = [alone(job) for job in jobs]
        batched = lines_together.generate_line_jobs(jobs)
    for one, many in zip(expected, batched):
        assert many.text == one.text and many.logprobs == pytest.approx(one.logprobs, abs=1e-6)


def test_label_and_line_jobs_in_one_batch_each_get_their_own_kind(fewshot: ModelService) -> None:
    loaded = fewshot.backend.model("fewshot")
    prefix = prompts.SENTIMENT_INSTRUCTION
    label_job = lm_calls.LabelJob(loaded.model, loaded.tokenizer, f"{prefix}Review: fine\nSentiment:",
                                  lm_calls.SENTIMENT_LABELS, False, prefix)
    line_job = line_jobs(loaded.model, loaded.tokenizer, capture=False)[0]
    with loaded.lock, torch.inference_mode():
        scores, line = run_shared_jobs([label_job, line_job])
        assert isinstance(scores, lm_calls.LabelScores) and isinstance(line, lm_calls.Line)
        assert line.text == alone(line_job).text
        with pytest.raises(TypeError, match="LabelJob or a LineJob"):
            run_shared_jobs([label_job, "not a job"])


def test_answers_that_wait_together_share_one_batch_and_a_bad_one_fails_alone(fewshot: ModelService) -> None:
    questions = ["Where did the cat sit?", "什么是首都？", "What is there?"]
    expected = [fewshot.answer(context, question) for context, question in zip(CONTEXTS, questions)]
    batcher = fewshot.backend.call_batcher(fewshot.backend.model("fewshot"))
    before = len(batcher.batch_sizes)

    def empty() -> Any:
        return fewshot.answer("   ", "Why?")

    empty.reaches_model = False                       # refused by validation before it queues anything
    outcomes = together(fewshot, [lambda context=context, question=question: fewshot.answer(context, question)
                                  for context, question in zip(CONTEXTS, questions)] + [empty])
    assert isinstance(outcomes[-1], InvalidInputError)
    assert batcher.batch_sizes[before:] == [len(questions)]
    for one, many in zip(expected, outcomes):
        assert many.prediction == one.prediction
        assert many.decoder_token_ids == one.decoder_token_ids
        assert np.abs(np.asarray(many.decoder_attention) - np.asarray(one.decoder_attention)).max() < 1e-5


@pytest.mark.slow
def test_on_gemma_answers_asked_together_equal_the_answers_asked_alone() -> None:
    """The real Gemma-3-270M (window 512: the QA prompts fit): four examples, English and Chinese (the Chinese one the
    longest answer), in one decoding loop."""
    from demos.examples import QA_EXAMPLES

    service = ModelService("embedded")
    examples = [tuple(example[:2]) for example in QA_EXAMPLES[:4]]
    expected = [service.answer(context, question) for context, question in examples]
    batcher = service.backend.call_batcher(service.backend.model(service.backend.generation_key))
    outcomes = together(service, [lambda example=example: service.answer(*example) for example in examples],
                        timeout=60)
    assert batcher.batch_sizes[-1] == len(examples)
    for one, many in zip(expected, outcomes):
        assert many.prediction["answer"] == one.prediction["answer"]
        assert many.prediction["score"] == pytest.approx(one.prediction["score"], abs=1e-5)
        assert np.abs(np.asarray(many.decoder_attention) - np.asarray(one.decoder_attention)).max() < 1e-5


def test_a_line_joining_a_running_loop_gets_what_it_gets_alone_and_stopped_lines_return_at_once(
        fewshot: ModelService, wide_window: Any) -> None:
    model, tokenizer = wide_window
    jobs = line_jobs(model, tokenizer)
    with fewshot.backend.model("fewshot").lock, torch.inference_mode():
        expected = [alone(job) for job in jobs]
        prompts = [lines_together.prompt_ids(job) for job in jobs]
        batch = lines_together.LineBatch(model, tokenizer, lines_together.cached_prefix(jobs[3], prompts[3]), True)
        batch.join([3], [jobs[3]], [prompts[3]])                    # the longest limit runs first, alone
        batch.step()
        batch.join([0, 1, 2], jobs[:3], prompts[:3])                # the others join it mid-way
        lines, handed_back_at, step = dict(batch.finished()), {}, 0
        while batch.busy():
            step += 1
            batch.step()
            for key, line in batch.finished():
                lines[key], handed_back_at[key] = line, step
    assert batch.rows == [] and batch.cache is None                  # every line left: no cache is held
    for key, one in enumerate(expected):
        assert_same_line(one, lines[key])
    assert min(handed_back_at.values()) < max(handed_back_at.values())   # some returned while others decoded


def test_a_loop_takes_a_line_only_while_its_cache_stays_inside_the_window(fewshot: ModelService,
                                                                         wide_window: Any) -> None:
    model, tokenizer = wide_window
    job = line_jobs(model, tokenizer)[2]
    with fewshot.backend.model("fewshot").lock, torch.inference_mode():
        ids = lines_together.prompt_ids(job)
        batch = lines_together.LineBatch(model, tokenizer, lines_together.cached_prefix(job, ids), True)
        room = 512 - len(ids) - 2                                   # the most new tokens a lone line may have
        assert batch.fits([ids], [room]) and not batch.fits([ids], [room + 1])
        assert not batch.fits([ids[: batch.cached]], [1])           # a prompt must go past the prefix
        batch.join([0], [lm_calls.LineJob(model, tokenizer, job.prompt, room - 8, None, True, job.prefix_text)],
                   [ids])
        assert batch.fits([ids], [room])             # side by side: the two decode at once, in the same columns
        batch.step()
        assert batch.busy()                          # a column more: a line joining now has one token less room
        assert batch.fits([ids], [2]) and batch.fits([ids], [room - 1]) and not batch.fits([ids], [room])


@pytest.mark.slow
def test_on_gemma_a_short_answer_asked_during_a_long_one_joins_it_and_returns_first() -> None:
    """The tab's Chinese example has its longest answer; an English one asked while it decodes joins its loop and is
    answered first, each answer equal to the one asked alone."""
    import threading

    from demos.examples import QA_EXAMPLES

    service = ModelService("embedded")
    long_question, short_question = tuple(QA_EXAMPLES[0][:2]), tuple(QA_EXAMPLES[2][:2])
    expected = {name: service.answer(*question) for name, question in
                (("long", long_question), ("short", short_question))}
    batcher = service.backend.call_batcher(service.backend.model(service.backend.generation_key))
    before = len(batcher.batch_sizes)
    outcomes: dict[str, Any] = {}
    answered: list[str] = []

    def ask(name: str, question: tuple[str, str]) -> None:
        outcomes[name] = service.answer(*question)
        answered.append(name)

    long_one = threading.Thread(target=ask, args=("long", long_question))
    long_one.start()
    deadline = time.monotonic() + 60
    while batcher.running() < 1:                                    # the long answer is decoding
        assert time.monotonic() < deadline, "the long answer never started"
        time.sleep(0.01)
    ask("short", short_question)
    long_one.join(timeout=120)
    assert answered == ["short", "long"] and batcher.batch_sizes[before:] == [1, 1]
    for name, one in expected.items():
        many = outcomes[name]
        assert many.prediction["answer"] == one.prediction["answer"]
        assert many.prediction["score"] == pytest.approx(one.prediction["score"], abs=1e-5)
        assert np.abs(np.asarray(many.decoder_attention) - np.asarray(one.decoder_attention)).max() < 1e-5
