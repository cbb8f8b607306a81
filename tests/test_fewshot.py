"""Few-shot tasks on a tiny random Gemma3 with a tiny trained tokenizer: garbage answers, but always valid ones."""

from __future__ import annotations


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

from service.tasks import fewshot, lm_calls
from service.text import is_cjk_ideograph
from service.tasks.fewshot import (
    FewShotOutcome,
    answer_fewshot,
    classify_fewshot,
    snap_to_span,
    translate_fewshot,
)

TRAINING_TEXT = [
    "Classify each review as positive or negative. Review: Sentiment: Text: Question: Answer:",
    "Translate English to Chinese. English: Chinese: The weather is nice today.",
    "今天天气很好，所以我们要去公园。我哥哥在上海的一家医院工作。",
    "Marie Curie was born in Warsaw in 1867 and later moved to Paris.",
]


@pytest.fixture(scope="module")
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on a few sentences: covers any text, including Chinese, in a few hundred tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")


@pytest.fixture(scope="module")
def tiny_gemma(tiny_tokenizer: PreTrainedTokenizerFast) -> Gemma3ForCausalLM:
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=4096,
        sliding_window=64, pad_token_id=tiny_tokenizer.pad_token_id, bos_token_id=tiny_tokenizer.bos_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
    )
    return Gemma3ForCausalLM._from_config(config, attn_implementation="eager").eval()


USER_FIELDS = {"text", "context", "question", "source"}


def assert_segments_tile(outcome: FewShotOutcome) -> None:
    """Segments cover prompt + completion in order, without gaps: instruction, demonstrations, the query's format
    words around the user's own fields (role input), and the completion as "answer" (role output)."""
    names = [name for name, _, _, _ in outcome.segments]
    assert names[0] == "instruction" and names[-1] == "answer"
    demonstrations = [name for name in names if name.startswith("demonstration")]
    assert demonstrations == [f"demonstration {index}" for index in range(1, len(demonstrations) + 1)]
    query = names[1 + len(demonstrations):-1]
    assert set(query) <= USER_FIELDS | {"format"} and query[0] == query[-1] == "format"
    roles = {name: role for name, _, _, role in outcome.segments}
    assert roles["answer"] == "output" and all(roles[name] == "input" for name in query if name != "format")
    assert all(roles[name] == "scaffold" for name in ["instruction", "format", *demonstrations])
    position = 0
    for _, start, end, _ in outcome.segments:
        assert start == position and end >= start
        position = end
    assert position == len(outcome.prompt + outcome.completion)
    assert outcome.segments[-1][1] == len(outcome.prompt)
    assert "\n" not in outcome.completion


# --- sentiment ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["A lovely, warm film.", "这家店的服务太差了。"])
def test_classify_returns_a_label_with_a_probability(tiny_gemma, tiny_tokenizer, text):
    outcome = classify_fewshot(tiny_gemma, tiny_tokenizer, text)
    assert outcome.prediction["label"] in ("positive", "negative")
    assert 0.5 <= outcome.prediction["score"] <= 1.0
    assert outcome.completion == " " + outcome.prediction["label"]
    assert_segments_tile(outcome)


def test_classify_prompt_ends_with_the_query_review(tiny_gemma, tiny_tokenizer):
    outcome = classify_fewshot(tiny_gemma, tiny_tokenizer, "Great\nphone")
    _, start, end, role = next(segment for segment in outcome.segments if segment[0] == "text")
    assert outcome.prompt[start:end] == "Great phone" and role == "input"   # newlines in user text are folded
    assert outcome.prompt.endswith("Review: Great phone\nSentiment:")


def test_classify_is_deterministic(tiny_gemma, tiny_tokenizer):
    first = classify_fewshot(tiny_gemma, tiny_tokenizer, "Not bad at all.")
    second = classify_fewshot(tiny_gemma, tiny_tokenizer, "Not bad at all.")
    assert first == second


# --- question answering ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("context, question", [
    ("The Eiffel Tower was completed in 1889 in Paris.", "When was it completed?"),
    ("长江是中国最长的河流，最后流入东海。", "长江流入哪里？"),
    ("x", "?"),
])
def test_answer_is_always_the_context_span_at_its_offsets(tiny_gemma, tiny_tokenizer, context, question):
    outcome = answer_fewshot(tiny_gemma, tiny_tokenizer, context, question)
    prediction = outcome.prediction
    assert context[prediction["start"]:prediction["end"]] == prediction["answer"]
    assert 0.0 <= prediction["score"] <= 1.0
    assert_segments_tile(outcome)
    assert context in outcome.prompt and question in outcome.prompt


def test_answer_prompt_holds_the_bilingual_demonstrations(tiny_gemma, tiny_tokenizer):
    outcome = answer_fewshot(tiny_gemma, tiny_tokenizer, "Bob lives in Oslo.", "Where does Bob live?")
    demonstrations = [outcome.prompt[start:end] for name, start, end, _ in outcome.segments if "demonstration" in name]
    assert len(demonstrations) == len(fewshot.QA_DEMONSTRATIONS)
    assert any(any(is_cjk_ideograph(char) for char in text) for text in demonstrations)
    assert any(text.isascii() for text in demonstrations)


# --- translation ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, direction", [("I like tea.", "en-zh"), ("我喜欢喝茶。", "zh-en")])
def test_translate_reports_direction_and_one_line(tiny_gemma, tiny_tokenizer, text, direction):
    outcome = translate_fewshot(tiny_gemma, tiny_tokenizer, text, direction)
    assert outcome.prediction["direction"] == direction
    assert outcome.prediction["translation"] == outcome.completion.strip()
    assert_segments_tile(outcome)
    source, target = ("English", "Chinese") if direction == "en-zh" else ("Chinese", "English")
    assert outcome.prompt.endswith(f"{source}: {text}\n{target}:")


def test_translate_stops_within_the_token_budget(tiny_gemma, tiny_tokenizer):
    text = "Good morning."
    forward_calls = []
    hook = tiny_gemma.register_forward_hook(lambda module, args, output: forward_calls.append(1))
    try:
        translate_fewshot(tiny_gemma, tiny_tokenizer, text, "en-zh")
    finally:
        hook.remove()
    budget = min(2 * len(tiny_tokenizer(text, add_special_tokens=False).input_ids) + 10, 120)
    assert 1 <= len(forward_calls) <= budget           # one forward per generated token


def test_translate_rejects_unknown_direction(tiny_gemma, tiny_tokenizer):
    with pytest.raises(ValueError, match="en-zh"):
        translate_fewshot(tiny_gemma, tiny_tokenizer, "hello", "fr-de")


# --- span snapping --------------------------------------------------------------------------------------------

def test_snap_finds_exact_answer_ignoring_case_and_edge_punctuation():
    context = "The Amazon flows into the Atlantic Ocean."
    start, end = snap_to_span(context, " the atlantic ocean.")
    assert context[start:end] == "the Atlantic Ocean"


def test_snap_maps_a_paraphrase_to_the_overlapping_words():
    context = "Maria teaches music at a school in Madrid."
    start, end = snap_to_span(context, "music teacher in Madrid")
    assert context[start:end] in ("music at a school in Madrid", "in Madrid", "Madrid")


def test_snap_works_on_chinese_characters():
    context = "熊猫主要生活在中国四川的山区，最喜欢吃竹子。"
    start, end = snap_to_span(context, "竹子呀")
    assert context[start:end] == "竹子"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60), st.text(max_size=20))
def test_snap_always_returns_a_valid_span(context, answer):
    start, end = snap_to_span(context, answer)
    assert 0 <= start <= end <= len(context)
    if context.strip():
        assert end > start


# --- the evaluation set stays honest: tests/test_eval_split.py ------------------------------------------------

# --- known weak spot: answers that restate the question -----------------------------------------------------

def test_trim_drops_leading_characters_repeated_from_a_chinese_question():
    context = "熊猫主要生活在中国四川的山区，最喜欢吃竹子。"
    start = context.index("喜欢吃竹子")
    trimmed = fewshot.trim_restated_question(context, "熊猫最喜欢吃什么？", start, start + 5)
    assert context[trimmed[0]:trimmed[1]] == "竹子"


def test_trim_keeps_an_answer_made_only_of_question_words():
    context = "Paris is in France."
    assert fewshot.trim_restated_question(context, "Is Paris in France?", 0, 5) == (0, 5)


def test_span_constraint_masks_tokens_that_leave_the_context(tiny_tokenizer):
    context = "Marie Curie was born in Warsaw"
    prompt_ids = tiny_tokenizer("Answer:").input_ids
    constraint = lm_calls.ContextSpanConstraint(tiny_tokenizer, context, len(prompt_ids))
    scores = torch.zeros(1, len(tiny_tokenizer))                                    # (batch, vocab): all tied
    masked = constraint(torch.tensor([prompt_ids]), scores)
    allowed = torch.isfinite(masked[0]).nonzero().flatten().tolist()
    assert allowed
    for token in allowed:
        assert tiny_tokenizer.decode([token]).strip().lower() in context.lower()


def _allowed_after(tokenizer, context: str, answer_so_far: str, favoured: str) -> tuple[list[int], int]:
    """The tokens the span constraint allows after `answer_so_far` when `favoured`'s first token scores highest."""
    prompt_ids = tokenizer("Answer:").input_ids
    generated = tokenizer(answer_so_far, add_special_tokens=False).input_ids
    constraint = lm_calls.ContextSpanConstraint(tokenizer, context, len(prompt_ids))
    next_token = tokenizer(favoured, add_special_tokens=False).input_ids[0]
    scores = torch.zeros(1, len(tokenizer))                                          # (batch, vocab)
    scores[0, next_token] = 10.0
    masked = constraint(torch.tensor([prompt_ids + generated]), scores)
    return torch.isfinite(masked[0]).nonzero().flatten().tolist(), next_token


def test_span_constraint_ends_the_answer_at_its_sentence_end(tiny_tokenizer):
    context = "The wall is very long. Most of it was built later."
    allowed, next_token = _allowed_after(tiny_tokenizer, context, " The wall is very long. ", "Most")
    assert (context.lower().find(("The wall is very long. " + tiny_tokenizer.decode([next_token])).lower()) == 0
            and next_token not in allowed)                                  # a substring, but past the sentence end
    assert tiny_tokenizer.eos_token_id in allowed                           # the answer may stop there
    allowed, next_token = _allowed_after(tiny_tokenizer, context, " The wall is", " very")
    assert next_token in allowed                                            # inside the sentence: as before


@pytest.mark.parametrize(("line", "crosses"), [
    ("一种方式。它使用", True), ("一种方式。", False), ("Ming dynasty. Most", True), ("in 1867. Later", True),
    ("Is it? Yes", True), ("Dr. Smith", False), ("U.S. Army", False), ("St. Louis", False), ("3.14 m", False),
])
def test_a_sentence_break_is_an_end_with_text_after_it_not_a_title(line, crosses):
    assert bool(lm_calls.SENTENCE_BREAK.search(line)) is crosses
