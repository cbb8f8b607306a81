"""Segment shares, answer focus and source alignment, computed from kept results of every task and backend."""

import numpy as np
import pytest

from service import InvalidInputError, ModelService, UnsupportedError
from service.analysis.segments import (HIDDEN, answer_focus, deciding_rows, produced_positions, segment_shares,
                                      source_alignment)
from service.tasks.fewshot import SENTIMENT_DEMONSTRATIONS


@pytest.fixture(scope="module")
def fewshot() -> ModelService:
    return ModelService("tiny-fewshot", max_attention_tokens=1024)


@pytest.fixture(scope="module")
def specialists() -> ModelService:
    return ModelService("tiny")


def _results(service: ModelService) -> list:
    return [
        service.classify("I loved this movie."),
        service.answer("Bob lives in Oslo and works in Bergen.", "Where does Bob live?"),
        service.translate("I like green tea."),
        service.generate("Once upon a time", max_new_tokens=4, min_new_tokens=4),
    ]


@pytest.mark.parametrize("profile", ["tiny-fewshot", "tiny"])
def test_shares_of_every_layer_sum_to_one_for_every_task(profile: str, fewshot, specialists) -> None:
    service = fewshot if profile == "tiny-fewshot" else specialists
    for result in _results(service):
        for head in (None, 0):
            shares = segment_shares(result, head=head)
            totals = np.sum([share.share_by_layer for share in shares], axis=0)
            np.testing.assert_allclose(totals, 1.0, atol=1e-4, err_msg=result.task)
            assert len(totals) == result.num_layers


def test_shares_match_a_hand_sum_over_the_produced_rows(fewshot) -> None:
    result = fewshot.classify("A warm and funny film.")
    rows, _ = deciding_rows(result)
    text = next(segment for segment in result.segments if segment.name == "text")
    by_hand = result.decoder_attention[2][:, rows, text.start:text.end].sum(-1).mean()
    share = next(share for share in segment_shares(result) if share.name == "text")
    assert share.share_by_layer[2] == pytest.approx(float(by_hand), abs=1e-6)


def test_a_truncated_result_keeps_the_missing_weight_as_hidden_tokens() -> None:
    capped = ModelService("tiny-fewshot", max_attention_tokens=64)
    result = capped.classify("I loved this movie.")
    shares = segment_shares(result)
    assert shares[-1].name == HIDDEN and max(shares[-1].share_by_layer) > 0
    np.testing.assert_allclose(np.sum([s.share_by_layer for s in shares], axis=0), 1.0, atol=1e-4)


def test_focus_shows_user_tokens_one_by_one_and_each_demonstration_as_one_column(fewshot) -> None:
    result = fewshot.answer("Bob lives in Oslo.", "Where does Bob live?")
    focus = answer_focus(result, layer=1)
    labels = [column.label for column in focus.columns]
    assert labels.count("demonstration 1") == 1 and "instruction" in labels and "first token" in labels
    context = next(segment for segment in result.segments if segment.name == "context")
    singles = [column.positions[0] for column in focus.columns if not column.collapsed]
    assert set(range(context.start, context.end)) <= set(singles)
    assert focus.weights.shape == (result.num_heads, len(focus.rows), len(focus.columns))
    np.testing.assert_allclose(focus.weights.sum(-1), 1.0, atol=1e-5)  # every key is in exactly one column
    assert focus.row_labels == [result.decoder_tokens[position] for position in focus.produced]
    assert focus.rows == [position - 1 for position in focus.produced]     # a decoder's row predicts the next token


def test_boundaries_come_from_the_prompt_builder_even_when_the_input_repeats_a_demonstration(fewshot) -> None:
    review = SENTIMENT_DEMONSTRATIONS[0][0]                # the very words of demonstration 1
    result = fewshot.classify(review)
    names = [segment.name for segment in result.segments]
    text = result.segments[names.index("text")]
    first_demo = result.segments[names.index("demonstration 1")]
    last_demo = result.segments[max(i for i, name in enumerate(names) if name.startswith("demonstration"))]
    assert text.start >= last_demo.end > first_demo.end    # the query, not the demonstration that reads the same
    assert "".join(result.decoder_tokens[text.start:text.end]).strip().startswith("The")


def test_source_alignment_rows_are_distributions_over_the_users_text(fewshot) -> None:
    result = fewshot.translate("I like green tea.")
    weights, rows, inputs = source_alignment(result, layer=3)   # a full-attention layer
    source = next(segment for segment in result.segments if segment.name == "source")
    assert inputs == list(range(source.start, source.end)) and rows == deciding_rows(result)[0]
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    sliding, _, _ = source_alignment(result, layer=0)          # window 16: late rows cannot see the source at all
    assert np.all((np.abs(sliding.sum(-1) - 1) < 1e-5) | (sliding.sum(-1) == 0))


def test_zero_shot_drops_the_demonstrations_and_keeps_the_rest(fewshot) -> None:
    few, zero = fewshot.compare_shots("sentiment", {"text": "I loved this movie."})
    few_names = [segment.name for segment in few.segments]
    zero_names = [segment.name for segment in zero.segments]
    assert any(name.startswith("demonstration") for name in few_names)
    assert not any(name.startswith("demonstration") for name in zero_names)
    assert zero_names == ["first token", "instruction", "format", "text", "format", "answer"]
    assert zero.prediction["label"] in ("positive", "negative") and len(zero.decoder_tokens) < len(few.decoder_tokens)
    assert zero.prompt.endswith("Review: I loved this movie.\nSentiment:")


def test_specialists_have_no_zero_shot_and_say_so(specialists) -> None:
    with pytest.raises(UnsupportedError, match="no demonstrations"):
        specialists.compare_shots("qa", {"context": "Bob lives in Oslo.", "question": "Where?"})


@pytest.mark.parametrize("inputs, message", [
    ({"context": "x"}, "needs question"),
    ({"context": "x", "question": "y", "answer": "z"}, "no input named"),
    ("context", "must be an object"),
])
def test_task_inputs_are_checked_by_name(fewshot, inputs, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        fewshot.run_task("qa", inputs)


def test_the_row_that_chose_a_decoder_label_is_the_position_before_it(fewshot) -> None:
    result = fewshot.classify("I loved this movie.")
    rows, produced = deciding_rows(result)
    assert produced == produced_positions(result) and rows == [position - 1 for position in produced]
    assert result.decoder_tokens[rows[0]].strip().endswith(":")              # "Sentiment:" chose the label


def test_an_encoder_reads_its_answer_from_the_answer_tokens_own_rows(specialists) -> None:
    result = specialists.classify("I loved this movie.")
    assert deciding_rows(result) == ([0], [0])                              # the classifier token
