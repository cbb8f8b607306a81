"""Attention on demand on the real Gemma-3-270M (slow): a pasted paragraph in Ask keeps its whole attention, as
queries and keys, exactly the model's own, in under 100 MB; and every view of the panel draws it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service import ModelService
from service.attention import capture, on_demand

pytestmark = pytest.mark.slow

PARAGRAPH = ("Marie Curie was born in Warsaw in 1867. She moved to Paris in 1891 to study physics and mathematics at "
             "the Sorbonne, where she met Pierre Curie. Together they discovered polonium and radium, and in 1903 "
             "they shared the Nobel Prize in Physics with Henri Becquerel. After Pierre died in 1906, she took over "
             "his teaching post and became the first woman to teach at the Sorbonne. In 1911 she received a second "
             "Nobel Prize, this time in Chemistry, which made her the first person to win the prize in two sciences. ")


@pytest.fixture(scope="module")
def embedded() -> ModelService:
    return ModelService("embedded")


@pytest.fixture(scope="module")
def long_answer(embedded: ModelService):
    context = (PARAGRAPH * 7)[:3000]                                 # 3,000 characters: ~940 tokens with the prompt
    return embedded.answer(context, "Where was Marie Curie born?")


def test_a_long_context_keeps_its_whole_attention_as_queries_and_keys(embedded: ModelService, long_answer) -> None:
    attention = long_answer.decoder_attention
    tokens = len(long_answer.decoder_tokens)
    assert isinstance(attention, on_demand.OnDemandAttention) and tokens > 900
    assert not any("shows the last" in notice for notice in long_answer.notices)   # nothing cut
    assert long_answer.prediction["answer"] == "Warsaw"
    assert attention.nbytes < 100e6 * tokens / 1024                  # ≤ 100 MB at 1,024 tokens: linear
    loaded = embedded.backend.model("embedded")
    with loaded.lock, torch.inference_mode():
        reference = capture.decoder_attention(loaded.model, torch.tensor([long_answer.decoder_token_ids]))
    for layer in (0, 5, 17):                                         # sliding-window and full layers
        assert np.abs(attention[layer] - reference[layer]).max() < 1e-5, layer
    assert attention.nbytes < reference.nbytes / 2           # 87 MB instead of 254 MB at 939 tokens


def test_every_panel_view_draws_a_long_result_within_the_update_budget(long_answer) -> None:
    from demos.attention_panel import VIEWS, selection_for

    drawn_views = []
    for view in VIEWS:
        if not view.applies(long_answer) or view.pending is not None or view.key == "roles":
            continue  # the lens and head roles run the model (their own tests), not this result
        drawn = view.draw(long_answer, selection_for(long_answer, view, "decoder", 9, 1, "entropy"))
        drawn_views.append(view.key)
        size = len(drawn.to_json()) if hasattr(drawn, "to_json") else len(str(drawn))
        assert size < 250_000, (view.key, size)
    assert {"focus", "shares", "heads", "overview", "summary", "rollout", "strip", "zoom"} <= set(drawn_views), \
        drawn_views
