"""Generation step by step: the candidates recorded while generating match a bare forward, greedy picks rank 0."""

import gc

import numpy as np
import pytest
import torch

from service import InvalidInputError, ModelService
from service.tasks.steps import StepRecorder


@pytest.fixture(scope="module")
def tiny() -> ModelService:
    return ModelService("tiny")


def _bare_next_token_probs(service: ModelService, ids: list[int]) -> np.ndarray:
    loaded = service.backend.model("generation")
    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.tensor([ids])).logits[0, -1].float()   # (vocab,)
    return torch.softmax(logits, dim=-1).numpy()


def test_greedy_steps_choose_rank_zero_and_match_a_bare_forward(tiny: ModelService) -> None:
    result = tiny.generate("The quick brown fox", max_new_tokens=6, min_new_tokens=6, candidates=5)
    steps = result.generation_steps
    ids = result.decoder_token_ids
    prompt_length = len(ids) - len(steps)
    assert len(steps) == 6
    for index, step in enumerate(steps):
        assert step["rank"] == 0 and step["token_id"] == ids[prompt_length + index]
        assert len(step["candidates"]) == 5 and "sampling_candidates" not in step
        probs = [candidate["p"] for candidate in step["candidates"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        bare = _bare_next_token_probs(tiny, ids[: prompt_length + index])
        top = np.argsort(-bare)[:5]
        np.testing.assert_allclose(probs, bare[top], atol=1e-5)
        assert step["p"] == pytest.approx(float(bare[step["token_id"]]), abs=1e-5)


def test_sampled_steps_record_the_distribution_after_temperature_and_top_k(tiny: ModelService) -> None:
    result = tiny.generate("The quick brown fox", max_new_tokens=8, min_new_tokens=8, temperature=0.7, top_k=4,
                           seed=11, candidates=10)
    for step in result.generation_steps:
        sampled = step["sampling_candidates"]
        assert len(sampled) == 4                                   # top-k 4 leaves four tokens to draw from
        assert sum(candidate["p"] for candidate in sampled) == pytest.approx(1.0, abs=1e-5)
        assert step["p_sampling"] > 0 and step["rank"] < 4         # the drawn token was one of the four
        raw = [candidate["p"] for candidate in step["candidates"]]
        assert max(c["p"] for c in sampled) > raw[0]               # temperature 0.7 sharpens the distribution


def test_steps_repeat_with_the_seed_and_can_be_switched_off(tiny: ModelService) -> None:
    first = tiny.generate("Once upon", max_new_tokens=4, min_new_tokens=4, temperature=1.0, seed=5)
    again = tiny.generate("Once upon", max_new_tokens=4, min_new_tokens=4, temperature=1.0, seed=5)
    assert first.generation_steps == again.generation_steps
    assert tiny.generate("Once upon", max_new_tokens=2, candidates=0).generation_steps is None


def test_candidate_count_is_checked(tiny: ModelService) -> None:
    with pytest.raises(InvalidInputError, match="candidates"):
        tiny.generate("Once upon", candidates=51)


def test_a_generation_holds_two_whole_distributions_at_most_and_leaves_no_cycle(
    tiny: ModelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step's vocabulary-sized distribution is dropped once its token is chosen (on Gemma it is 1 MB a step:
    a 200-token generation used to hold 420 MB), and nothing of the run waits for a full gc to be freed."""
    held: list[int] = []
    record_scores = StepRecorder._on_scores

    def counting(self: StepRecorder, input_ids: torch.Tensor, scores: torch.Tensor) -> None:
        record_scores(self, input_ids, scores)
        held.append(len(self._pending_raw) + len(self._pending_processed))

    monkeypatch.setattr(StepRecorder, "_on_scores", counting)
    gc.collect()
    gc.disable()
    try:
        result = tiny.generate("The quick brown fox", max_new_tokens=12, min_new_tokens=12, temperature=0.8, top_k=5,
                               seed=1)
        assert len(result.generation_steps) == 12
        del result
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        tensors_in_cycles = [item for item in gc.garbage if isinstance(item, torch.Tensor)]
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()
    assert len(held) == 12 and max(held) <= 2      # this step's raw and sampled distributions, nothing older
    assert tensors_in_cycles == []
