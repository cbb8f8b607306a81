"""The logit lens and the head-role probe: the lens's last layer is the model's own output, role scores are what
their definitions say on crafted attention."""

import numpy as np
import pytest

from service import InvalidInputError, ModelService, UnsupportedError
from service.probes.head_roles import PROBE_LENGTH, label_heads, probe_ids, score_heads


@pytest.mark.parametrize("profile", ["tiny", "tiny-fewshot"])
def test_the_lens_last_layer_is_the_models_output_distribution(profile: str) -> None:
    service = ModelService(profile)
    lens = service.logit_lens("Attention lets every token look at earlier tokens.", k=2)
    assert lens.max_diff_vs_model < 1e-4
    layers = service.backend.model(service.backend.generation_key).model.config.num_hidden_layers
    assert lens.num_layers == layers and len(lens.layers[0]) == lens.end - lens.start == len(lens.tokens)
    for layer in lens.layers:
        for ranked in layer:
            assert len(ranked) == 2 and ranked[0]["p"] >= ranked[1]["p"] and 0 <= ranked[0]["p"] <= 1
    payload = lens.to_json()
    assert set(payload) >= {"tokens", "layers", "max_diff_vs_model"} and set(payload["layers"][0][0]) == {"token", "p"}


def test_the_lens_reads_a_kept_generation_result_and_refuses_other_models() -> None:
    service = ModelService("tiny")
    result = service.generate("Once upon a time", max_new_tokens=3, min_new_tokens=3)
    lens = service.logit_lens(result, start=2)
    assert lens.tokens == result.decoder_tokens[2:] and lens.max_diff_vs_model < 1e-4
    with pytest.raises(UnsupportedError, match="decoder"):
        service.logit_lens(service.classify("A fine film."))
    with pytest.raises(InvalidInputError):
        service.logit_lens(result, start=3, end=2)


def _probe_attention(pattern: str, layers: int = 1, heads: int = 1, n: int = 4) -> np.ndarray:
    """A (layer, head, T, T) causal attention array over <bos> + x + x where every row does one thing."""
    length = 2 * n + 1
    attention = np.zeros((layers, heads, length, length))
    for q in range(length):
        if pattern == "previous":
            attention[..., q, max(q - 1, 0)] = 1.0
        elif pattern == "first":
            attention[..., q, 0] = 1.0
        elif pattern == "induction":
            attention[..., q, q - n + 1 if q > n else max(q - 1, 0)] = 1.0
        else:  # uniform over what the row may see
            attention[..., q, : q + 1] = 1.0 / (q + 1)
    return attention


def test_role_scores_match_their_definitions_on_crafted_attention() -> None:
    n = 4
    previous = score_heads(_probe_attention("previous", n=n), n)[0, 0]
    assert previous[0] == pytest.approx(1.0) and previous[3] == pytest.approx(0.0)
    first = score_heads(_probe_attention("first", n=n), n)[0, 0]
    assert first[1] == pytest.approx(1.0) and first[0] == pytest.approx(1 / (2 * n))  # only row 1's previous is 0
    induction = score_heads(_probe_attention("induction", n=n), n)[0, 0]
    assert induction[3] == pytest.approx(1.0)
    uniform = score_heads(_probe_attention("uniform", n=n), n)[0, 0]
    assert uniform[4] == pytest.approx(1.0)                      # entropy as large as it can be
    by_hand = np.mean([min(q + 1, 4) / (q + 1) for q in range(1, 2 * n + 1)])
    assert uniform[2] == pytest.approx(by_hand)                  # share within the last four tokens


def test_labels_follow_the_thresholds_in_order() -> None:
    crafted = np.concatenate([_probe_attention(p, n=12) for p in ("induction", "previous", "first", "uniform")], axis=1)
    roles = [head.role for head in label_heads(score_heads(crafted, 12))]
    assert roles == ["induction", "previous-token", "first-token sink", "broad"]


def test_the_probe_repeats_random_ordinary_tokens_and_runs_once_per_model() -> None:
    service = ModelService("tiny-fewshot")
    tokenizer = service.backend.model("fewshot").tokenizer
    ids = probe_ids(tokenizer)
    assert len(ids) == 2 * PROBE_LENGTH + 1 and ids[1:PROBE_LENGTH + 1] == ids[PROBE_LENGTH + 1:]
    assert not set(ids[1:]) & set(tokenizer.all_special_ids)
    roles = service.head_roles()
    assert len(roles) == 4 * 4 and {(h.layer, h.head) for h in roles} == {(l, h) for l in range(4) for h in range(4)}
    assert service.head_roles() is roles                         # kept, not probed again
