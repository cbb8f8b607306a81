"""Few-shot prefix reuse: the demonstrations run once; later requests compute only their own tokens, and the
attention they show is still exactly one eager pass over the whole prompt."""

import numpy as np
import pytest
import torch

from service import ModelService
from service.attention import capture
from service.attention.prefix_cache import PREFIXES, PrefixCache


@pytest.fixture()
def fewshot() -> ModelService:
    PREFIXES.clear()
    return ModelService("tiny-fewshot", max_attention_tokens=1024)


def _calls(service: ModelService):
    """Zero-shot runs: their prefix (the instruction) is the same for every input, whatever demonstrations a
    selector would pick, so the second input must find it cached."""
    return {
        "sentiment": lambda text: service.classify(text, zero_shot=True),
        "qa": lambda text: service.answer(f"{text} Bob lives in Oslo.", "Where does Bob live?", zero_shot=True),
        "translation": lambda text: service.translate(text, "en-zh", zero_shot=True),
    }


@pytest.mark.parametrize("task", ["sentiment", "qa", "translation"])
def test_a_reused_prefix_gives_the_full_prompt_attention(fewshot: ModelService, task: str) -> None:
    call = _calls(fewshot)[task]
    call("I loved this movie.")                       # runs the prefix once
    hits = PREFIXES.hits
    result = call("The soup was cold.")                # a new input on the same prefix: a hit
    assert PREFIXES.hits > hits
    loaded = fewshot.backend.model("fewshot")
    with loaded.lock, torch.inference_mode():
        reference = capture.decoder_attention(loaded.model, torch.tensor([result.decoder_token_ids]))
    assert np.abs(reference - result.decoder_attention).max() < 1e-5


@pytest.mark.usefixtures("whole_matrices")
@pytest.mark.parametrize("task", ["sentiment", "qa", "translation"])
def test_a_reused_demonstration_prefix_gives_the_full_prompt_attention(fewshot: ModelService, task: str) -> None:
    from service.tasks import fewshot as prompts

    loaded = fewshot.backend.model("fewshot")
    run = {
        "sentiment": lambda text: prompts.classify_fewshot(loaded.model, loaded.tokenizer, text,
                                                           demonstrations=prompts.SENTIMENT_DEMONSTRATIONS),
        "qa": lambda text: prompts.answer_fewshot(loaded.model, loaded.tokenizer, f"{text} Bob lives in Oslo.",
                                                  "Where?", demonstrations=prompts.QA_DEMONSTRATIONS),
        "translation": lambda text: prompts.translate_fewshot(loaded.model, loaded.tokenizer, text, "en-zh",
                                                              demonstrations=prompts.TRANSLATION_PAIRS),
    }[task]
    with loaded.lock, torch.inference_mode():
        run("I loved this movie.")
        hits = PREFIXES.hits
        outcome = run("The soup was cold.")           # same demonstrations, new input: the prefix is reused
        ids = outcome.attention.token_ids
        shown = capture.captured_attention(loaded.model, outcome.attention, len(ids))
        reference = capture.decoder_attention(loaded.model, torch.tensor([ids]))
    assert PREFIXES.hits > hits and np.abs(reference - shown).max() < 1e-5


def test_reuse_changes_no_prediction(fewshot: ModelService) -> None:
    first = fewshot.classify("A warm, funny film.")
    again = fewshot.classify("A warm, funny film.")      # the second time from the cached prefix
    PREFIXES.clear()
    fresh = fewshot.classify("A warm, funny film.")      # the same input picks the same demonstrations
    assert first.prediction == again.prediction == fresh.prediction
    np.testing.assert_allclose(again.decoder_attention, fresh.decoder_attention, atol=1e-6)


def test_zero_shot_has_its_own_prefix(fewshot: ModelService) -> None:
    few, zero = fewshot.compare_shots("sentiment", {"text": "I loved it."})
    assert len(zero.decoder_tokens) < len(few.decoder_tokens) and PREFIXES.misses >= 2


def test_a_prefix_that_tokenises_differently_inside_the_prompt_is_not_used(fewshot: ModelService) -> None:
    loaded = fewshot.backend.model("fewshot")
    cache = PrefixCache()
    prompt_ids = loaded.tokenizer("Review: goodness").input_ids
    assert cache.lookup(loaded.model, loaded.tokenizer, "Review: good", prompt_ids + [0]) is None or \
        loaded.tokenizer("Review: good").input_ids == prompt_ids[: len(loaded.tokenizer("Review: good").input_ids)]


def test_the_cache_keeps_at_most_its_limit(fewshot: ModelService) -> None:
    loaded = fewshot.backend.model("fewshot")
    cache = PrefixCache(max_entries=2)
    for word in ("alpha", "beta", "gamma"):
        prefix = f"Instruction {word}.\n"
        ids = loaded.tokenizer(prefix + "Review: x").input_ids
        cache.lookup(loaded.model, loaded.tokenizer, prefix, ids)
    assert cache.misses == 3 and len(cache._entries[loaded.model]) == 2


def test_reuse_switched_off_runs_every_prompt_whole(fewshot: ModelService, monkeypatch) -> None:
    """ATTENTION_ATLAS_PREFIX_REUSE=0 is the load benchmark's 'before' path: nothing is cached or looked up."""
    from service.attention import prefix_cache

    loaded = fewshot.backend.model("fewshot")
    monkeypatch.setenv(prefix_cache.PREFIX_REUSE_VARIABLE, "0")
    cache = PrefixCache()
    ids = loaded.tokenizer("Instruction.\nReview: x").input_ids
    assert cache.lookup(loaded.model, loaded.tokenizer, "Instruction.\n", ids) is None
    assert cache.misses == 0 and cache.hits == 0
    monkeypatch.setenv(prefix_cache.PREFIX_REUSE_VARIABLE, "yes")
    with pytest.raises(ValueError, match="0 \\(reuse off\\) or 1"):
        PrefixCache()


def test_a_prefix_run_after_a_shorter_cached_one_equals_its_own_whole_pass(fewshot: ModelService) -> None:
    """A demonstration set after the shared demonstrations runs only its own tokens, and its keys, values and
    attention block are what one pass over the whole set gives."""
    from service.tasks import fewshot as prompts

    loaded = fewshot.backend.model("fewshot")
    shared = prompts.QA_INSTRUCTION + prompts._qa_block(*prompts.QA_DEMONSTRATIONS[0]) + "\n"
    demonstration_set = shared + prompts._qa_block("长城很长。", "什么很长？", "长城") + "\n"
    prompt_ids = loaded.tokenizer(demonstration_set + "Text: x").input_ids
    extended, whole = PrefixCache(), PrefixCache()
    with loaded.lock, torch.inference_mode():
        shorter = extended.lookup(loaded.model, loaded.tokenizer, shared, prompt_ids)
        after = extended.lookup(loaded.model, loaded.tokenizer, demonstration_set, prompt_ids, extends=shorter)
        alone = whole.lookup(loaded.model, loaded.tokenizer, demonstration_set, prompt_ids)
    assert after.ids == alone.ids and len(shorter.ids) < len(after.ids)
    for mine, theirs in zip(after.block, alone.block):                              # (head, p, p)
        assert mine.shape == theirs.shape and (mine - theirs).abs().max() < 1e-5
    for mine, theirs in zip(after.cache.layers, alone.cache.layers):                 # (1, kv_head, p, dim)
        assert mine.keys.shape == theirs.keys.shape and (mine.keys - theirs.keys).abs().max() < 1e-5
        assert (mine.values - theirs.values).abs().max() < 1e-5
