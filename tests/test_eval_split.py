"""The evaluation stays honest: no dev or test item repeats (or nearly repeats) a demonstration the model can be shown.

Reads eval/dev and, when present, eval/test. Failure messages name the eval file and line, and quote only the
demonstration side, so a failing run does not put test items in front of whoever is tuning.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from service.tasks import fewshot
from service.tasks.demonstrations import load_pool

EVAL_DIR = Path(__file__).resolve().parent.parent / "eval"
SPLITS = [split for split in ("dev", "test") if (EVAL_DIR / split).is_dir()]
FIELDS = {"sentiment.jsonl": ("text",), "qa.jsonl": ("context", "question"), "translation.jsonl": ("text",)}
NEAR_DUPLICATE = 0.8            # character 3-gram Jaccard at or above this counts as the same sentence


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def trigrams(text: str) -> frozenset[str]:
    text = normalise(text)
    return frozenset(text[start:start + 3] for start in range(max(1, len(text) - 2)))


def jaccard(left: frozenset[str], right: frozenset[str]) -> float:
    return len(left & right) / len(left | right) if left or right else 1.0


def demonstration_texts() -> list[tuple[str, str]]:
    """(where, text) of everything a prompt can show: every pool item's fields and the fixed demonstrations."""
    texts = [(f"pool sentiment #{i}", item["text"]) for i, item in enumerate(load_pool("sentiment"))]
    for i, item in enumerate(load_pool("qa")):
        texts += [(f"pool qa #{i} context", item["context"]), (f"pool qa #{i} question", item["question"])]
    for i, item in enumerate(load_pool("translation")):
        texts += [(f"pool translation #{i} en", item["en"]), (f"pool translation #{i} zh", item["zh"])]
    texts += [("fixed sentiment", review) for review, _ in fewshot.SENTIMENT_DEMONSTRATIONS]
    for context, question, _ in fewshot.QA_DEMONSTRATIONS:
        texts += [("fixed qa context", context), ("fixed qa question", question)]
    texts += [("fixed translation", text) for pair in fewshot.TRANSLATION_PAIRS for text in pair]
    return texts


def eval_texts(split: str) -> list[tuple[str, str]]:
    """(file:line field, text) of every eval item's text, context and question."""
    texts = []
    for name, fields in FIELDS.items():
        path = EVAL_DIR / split / name
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                item = json.loads(line)
                texts += [(f"eval/{split}/{name}:{number} {field}", item[field]) for field in fields]
    return texts


@pytest.mark.parametrize("split", SPLITS)
def test_no_eval_item_is_a_demonstration(split):
    shown = {normalise(text): where for where, text in demonstration_texts()}
    clashes = [f"{where} is {shown[normalise(text)]}" for where, text in eval_texts(split) if normalise(text) in shown]
    assert not clashes, "eval items repeat demonstrations: " + "; ".join(clashes)


@pytest.mark.parametrize("split", SPLITS)
def test_no_eval_item_nearly_repeats_a_demonstration(split):
    shown = [(where, text, trigrams(text)) for where, text in demonstration_texts()]
    clashes = []
    for where, text in eval_texts(split):
        grams = trigrams(text)
        for pool_where, pool_text, pool_grams in shown:
            overlap = jaccard(grams, pool_grams)
            if overlap >= NEAR_DUPLICATE:
                clashes.append(f"{where} ~ {pool_where} {pool_text!r} (3-gram Jaccard {overlap:.2f})")
    assert not clashes, "near-duplicates of demonstrations: " + "; ".join(clashes)


def test_dev_and_test_do_not_share_items():
    if "test" not in SPLITS:
        pytest.skip("eval/test is not there yet")
    dev = {normalise(text) for _, text in eval_texts("dev")}
    shared = [where for where, text in eval_texts("test") if normalise(text) in dev]
    assert not shared, "test items also in dev: " + ", ".join(shared)


def lines(split: str, name: str) -> list[dict]:
    path = EVAL_DIR / split / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("split, minimum", [("dev", {"sentiment": 30, "qa": 30, "translation": 16}),
                                            ("test", {"sentiment": 60, "qa": 50, "translation": 40})])
def test_split_sizes_meet_the_brief(split, minimum):
    if split not in SPLITS:
        pytest.skip(f"eval/{split} is not there yet")
    sentiment, qa, translation = (lines(split, f"{task}.jsonl") for task in ("sentiment", "qa", "translation"))
    assert len(sentiment) >= minimum["sentiment"] and len(qa) >= minimum["qa"]
    assert {item["lang"] for item in sentiment} == {item["lang"] for item in qa} == {"en", "zh"}
    directions = [item["direction"] for item in translation]
    assert directions.count("en-zh") >= minimum["translation"] and directions.count("zh-en") >= minimum["translation"]
    for item in qa:
        assert item["category"] and all(answer in item["context"] for answer in item["answers"])


def test_intervals_are_seeded_and_bracket_the_value():
    from eval.evaluate import bootstrap_interval, length_bucket, metric_rows

    records = [{"task": "qa", "correct": index % 4 != 0, "f1": 1.0, "group": "who", "lang": "en"}
               for index in range(40)]
    accuracy = lambda chosen: sum(r["correct"] for r in chosen) / len(chosen)  # noqa: E731
    low, high = bootstrap_interval(records, accuracy)
    assert low <= 0.75 <= high and (low, high) == bootstrap_interval(records, accuracy)
    rows = {row["metric"].strip(): row for row in metric_rows({"items": records})}
    assert rows["QA exact match"]["value"] == 0.75 and rows["QA EM · who"]["n"] == 40
    assert [length_bucket(text, "en-zh") for text in ("I like tea.", " ".join(["word"] * 20))] == ["short", "long"]
    assert length_bucket("我每天早上六点起床。", "zh-en") == "short"
