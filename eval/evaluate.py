"""Score the embedded few-shot profile (or a running app through its API) on a bilingual evaluation split.

    python -m eval                                           # both splits (eval/dev, eval/test), table with CIs
    python eval/evaluate.py                                  # the embedded Gemma in this process, eval/dev
    python eval/evaluate.py --api http://127.0.0.1:7860      # the running app, via gradio_client
    python eval/evaluate.py --data /path/to/heldout          # a directory with sentiment/qa/translation.jsonl,
                                                             # or one .jsonl whose lines carry "task"
    python eval/evaluate.py --fixed                          # the fixed demonstrations instead of chosen ones

Metrics: sentiment accuracy, QA exact match (SQuAD-style normalisation, any listed answer) and token F1,
chrF (sacrebleu's default CHRF: character n-grams, so it also works for Chinese, which has no spaces).
Intervals: 95% percentile bootstrap over items (1,000 resamples, seeded); chrF is resampled at the corpus level
(per-sentence n-gram statistics summed, as sacrebleu does).
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

EVAL_DIR = Path(__file__).resolve().parent
SPLITS = ("dev", "test")                     # eval/dev: tuned on; eval/test: written apart, scored once at the end
TASK_FILES = {"sentiment": "sentiment.jsonl", "qa": "qa.jsonl", "translation": "translation.jsonl"}
TARGETS = {"sentiment_accuracy": 0.95, "qa_exact_match": 0.80, "chrf_en-zh": 35.0, "chrf_zh-en": 60.0}
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 14

Runner = dict[str, Callable[..., dict[str, Any]]]


# --- data -----------------------------------------------------------------------------------------------------

def load_items(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Items by task from a directory of <task>.jsonl files or one JSONL file whose lines have a "task" field."""
    items: dict[str, list[dict[str, Any]]] = {task: [] for task in TASK_FILES}
    if path.is_dir():
        for task, name in TASK_FILES.items():
            if (path / name).exists():
                items[task] = list(_read_jsonl(path / name))
    else:
        for item in _read_jsonl(path):
            task = item.get("task")
            if task not in items:
                raise SystemExit(f"{path}: every line needs a task in {sorted(items)}, got {task!r}")
            items[task].append(item)
    return items


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{path}:{number}: not valid JSON ({error})") from error


# --- runners: in-process model or the app's API -------------------------------------------------------------

def local_runner(device: str = "cpu", selector: Any = None, fixed: bool = False, model: Any = None,
                 tokenizer: Any = None) -> Runner:
    """The embedded Gemma in this process, with demonstrations chosen as the app chooses them (the same
    DemonstrationSelector on the packaged MiniLM, for the tasks in CHOSEN_PER_INPUT), or the fixed
    demonstrations everywhere (fixed=True)."""
    sys.path.insert(0, str(EVAL_DIR.parent))
    from service.backends.fewshot import CHOSEN_PER_INPUT
    from service.tasks.demonstrations import DemonstrationSelector, minilm_loader
    from service.tasks.fewshot import answer_fewshot, classify_fewshot, translate_fewshot
    from service.text import detect_direction

    if model is None:
        from service.models.embedded import load_embedded_gemma

        model, tokenizer = load_embedded_gemma(device)
    chosen_everywhere = selector is not None            # a selector passed in (tuning) serves every task
    if selector is None and not fixed:
        selector = DemonstrationSelector(encoder=minilm_loader(device))

    def shown(task: str, chosen: Callable[[], list[Any]]) -> list[tuple[str, ...]] | None:
        if fixed or (task not in CHOSEN_PER_INPUT and not chosen_everywhere):
            return None
        return [choice.item for choice in chosen()] or None

    def translate(text: str, direction: str) -> dict[str, Any]:
        direction = detect_direction(text) if direction == "auto" else direction
        demonstrations = shown("translation", lambda: selector.for_translation(text, direction))
        return translate_fewshot(model, tokenizer, text, direction, demonstrations=demonstrations).prediction

    def classify(text: str) -> dict[str, Any]:
        demonstrations = shown("sentiment", lambda: selector.for_sentiment(text))
        return classify_fewshot(model, tokenizer, text, demonstrations=demonstrations).prediction

    def answer(context: str, question: str) -> dict[str, Any]:
        demonstrations = shown("qa", lambda: selector.for_qa(context, question))
        return answer_fewshot(model, tokenizer, context, question, demonstrations=demonstrations).prediction

    return {"classify": classify, "answer": answer, "translate": translate}


def api_runner(url: str) -> Runner:
    from gradio_client import Client

    client = Client(url, verbose=False)

    def call(api_name: str) -> Callable[..., dict[str, Any]]:
        def predict(*args: Any) -> dict[str, Any]:
            result = client.predict(*args, api_name=api_name)
            if isinstance(result, (list, tuple)):      # the app's endpoints return (result JSON, display value)
                result = result[0]
            if isinstance(result, str):
                result = json.loads(result)
            # The endpoints return the prediction dict; accept a whole AttentionResult JSON too.
            return result.get("prediction", result) if isinstance(result, dict) else result
        return predict

    return {"classify": call("/classify"), "answer": call("/answer"), "translate": call("/translate")}


# --- metrics --------------------------------------------------------------------------------------------------

_PUNCTUATION = set(string.punctuation) | set("，。！？、；：“”‘’（）《》「」【】…—·")


def normalise_answer(text: str) -> str:
    """SQuAD normalisation (lower case, no punctuation, no English articles, single spaces), CJK-aware."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if char in _PUNCTUATION else char for char in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _answer_units(text: str) -> list[str]:
    """Words for Latin text, single characters for CJK (so F1 works on Chinese too)."""
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", normalise_answer(text))


def token_f1(prediction: str, answer: str) -> float:
    predicted, gold = _answer_units(prediction), _answer_units(answer)
    common = sum(min(predicted.count(unit), gold.count(unit)) for unit in set(predicted))
    if not predicted or not gold or common == 0:
        return float(predicted == gold)
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def chrf(hypotheses: list[str], references: list[list[str]]) -> float:
    """Corpus chrF (sacrebleu default CHRF: character 6-grams, β=2); references: one list per item."""
    return chrf_from_stats(chrf_statistics(hypotheses, references))


def chrf_statistics(hypotheses: list[str], references: list[list[str]]) -> list[list[int]]:
    """Per-sentence chrF n-gram statistics (sacrebleu's, best reference per sentence); corpus chrF sums them."""
    from sacrebleu.metrics import CHRF

    most = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else refs[0] for refs in references] for k in range(most)]
    by_sentence = list(zip(*streams))
    return [list(map(int, stats)) for stats in CHRF()._extract_corpus_statistics(hypotheses, streams)] \
        if by_sentence else []


def chrf_from_stats(stats: list[list[int]]) -> float:
    from sacrebleu.metrics import CHRF

    totals = [sum(column) for column in zip(*stats)]
    return CHRF()._compute_score_from_stats(totals).score


def length_bucket(text: str, direction: str) -> str:
    """short: ≤ 8 English words / ≤ 12 Chinese characters; long: ≥ 20 words / ≥ 30 characters; else medium."""
    if direction.startswith("zh"):
        size = sum(1 for char in text if not char.isspace() and char not in _PUNCTUATION)
        short, long = 12, 30
    else:
        size = len(text.split())
        short, long = 8, 20
    return "short" if size <= short else "long" if size >= long else "medium"


# --- evaluation -----------------------------------------------------------------------------------------------

def evaluate(items: dict[str, list[dict[str, Any]]], runner: Runner, verbose: bool = False) -> dict[str, Any]:
    """Run every item through `runner` and return the metrics (plus per-item records under "items").

    Each record carries what the intervals and breakdowns need: "group" (sentiment: language; QA: category;
    translation: direction), "bucket" (translation length), "correct"/"f1" or "chrf_stats".
    """
    report: dict[str, Any] = {"counts": {task: len(task_items) for task, task_items in items.items()}, "items": []}
    log = print if verbose else (lambda *args: None)

    if items["sentiment"]:
        started, correct, by_lang = time.perf_counter(), 0, {}
        for item in items["sentiment"]:
            prediction = runner["classify"](item["text"])
            ok = prediction["label"] == item["label"]
            correct += ok
            lang = by_lang.setdefault(item.get("lang", "?"), [0, 0])
            lang[0] += ok
            lang[1] += 1
            report["items"].append({"task": "sentiment", "input": item["text"], "gold": item["label"],
                                    "prediction": prediction, "correct": bool(ok),
                                    "group": item.get("lang", "?")})
            log(f"{'OK ' if ok else 'BAD'} sentiment {item['text'][:50]!r} -> {prediction}")
        report["sentiment_accuracy"] = correct / len(items["sentiment"])
        report["sentiment_accuracy_by_lang"] = {lang: hits / total for lang, (hits, total) in by_lang.items()}
        report["sentiment_seconds"] = round(time.perf_counter() - started, 1)

    if items["qa"]:
        started, exact, f1_total, offsets_ok = time.perf_counter(), 0, 0.0, 0
        for item in items["qa"]:
            prediction = runner["answer"](item["context"], item["question"])
            answer = prediction["answer"]
            ok = any(normalise_answer(answer) == normalise_answer(gold) for gold in item["answers"])
            f1 = max(token_f1(answer, gold) for gold in item["answers"])
            exact += ok
            f1_total += f1
            offsets_ok += item["context"][prediction["start"]:prediction["end"]] == answer
            report["items"].append({"task": "qa", "input": item["question"], "gold": item["answers"],
                                    "prediction": prediction, "correct": bool(ok), "f1": f1,
                                    "group": item.get("category", "?"), "lang": item.get("lang", "?")})
            log(f"{'OK ' if ok else 'BAD'} qa {item['question']!r} -> {answer!r} (gold {item['answers'][0]!r})")
        count = len(items["qa"])
        report["qa_exact_match"] = exact / count
        report["qa_f1"] = f1_total / count
        report["qa_offsets_valid"] = offsets_ok / count
        report["qa_seconds"] = round(time.perf_counter() - started, 1)

    if items["translation"]:
        by_direction: dict[str, tuple[list[str], list[list[str]]]] = {}
        started = time.perf_counter()
        for item in items["translation"]:
            prediction = runner["translate"](item["text"], item.get("direction", "auto"))
            direction = item.get("direction") or prediction["direction"]
            hypotheses, references = by_direction.setdefault(direction, ([], []))
            hypotheses.append(prediction["translation"])
            references.append(item["references"])
            stats = chrf_statistics([prediction["translation"]], [item["references"]])[0]
            report["items"].append({"task": "translation", "input": item["text"], "gold": item["references"],
                                    "prediction": prediction, "group": direction,
                                    "bucket": length_bucket(item["text"], direction), "chrf_stats": stats})
            log(f"translation [{direction}] {item['text']!r} -> {prediction['translation']!r}")
        for direction, (hypotheses, references) in sorted(by_direction.items()):
            report[f"chrf_{direction}"] = round(chrf(hypotheses, references), 2)
        report["translation_seconds"] = round(time.perf_counter() - started, 1)
    return report


# --- intervals and breakdowns ---------------------------------------------------------------------------------

def bootstrap_interval(records: list[dict[str, Any]], score: Callable[[list[dict[str, Any]]], float],
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95% percentile bootstrap interval of score(records), resampling records with replacement."""
    import random

    if not records:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    count = len(records)
    values = sorted(score([records[rng.randrange(count)] for _ in range(count)]) for _ in range(resamples))
    return values[int(0.025 * resamples)], values[min(resamples - 1, int(0.975 * resamples))]


def _accuracy(records: list[dict[str, Any]]) -> float:
    return sum(record["correct"] for record in records) / len(records)


def _corpus_chrf(records: list[dict[str, Any]]) -> float:
    return chrf_from_stats([record["chrf_stats"] for record in records])


def metric_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric and per breakdown: name, n, value, (low, high), target."""
    records = report["items"]
    rows: list[dict[str, Any]] = []

    def add(name: str, chosen: list[dict[str, Any]], score: Callable[..., float], target: float | None = None,
            scale: float = 1.0) -> None:
        if chosen:
            low, high = bootstrap_interval(chosen, score)
            rows.append({"metric": name, "n": len(chosen), "value": score(chosen) * scale,
                         "low": low * scale, "high": high * scale, "target": target})

    def by(task: str, key: str) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            if record["task"] == task:
                groups.setdefault(str(record.get(key, "?")), []).append(record)
        return groups

    sentiment = [record for record in records if record["task"] == "sentiment"]
    add("sentiment accuracy", sentiment, _accuracy, TARGETS["sentiment_accuracy"])
    for lang, chosen in sorted(by("sentiment", "group").items()):
        add(f"  sentiment · {lang}", chosen, _accuracy)
    qa = [record for record in records if record["task"] == "qa"]
    add("QA exact match", qa, _accuracy, TARGETS["qa_exact_match"])
    add("QA unit F1", qa, lambda chosen: sum(record["f1"] for record in chosen) / len(chosen))
    order = ["who", "when", "where", "what", "how many"]
    for category, chosen in sorted(by("qa", "group").items(),
                                   key=lambda pair: (order.index(pair[0]) if pair[0] in order else 99, pair[0])):
        add(f"  QA EM · {category}", chosen, _accuracy)
    for lang, chosen in sorted(by("qa", "lang").items()):
        add(f"  QA EM · {lang}", chosen, _accuracy)
    for direction, chosen in sorted(by("translation", "group").items()):
        add(f"chrF {direction}", chosen, _corpus_chrf, TARGETS.get(f"chrf_{direction}"))
        for bucket in ("short", "medium", "long"):
            add(f"  chrF {direction} · {bucket}", [r for r in chosen if r["bucket"] == bucket], _corpus_chrf)
    return rows


def table(reports: dict[str, dict[str, Any]]) -> str:
    """Markdown table of every split's metrics with 95% bootstrap intervals and targets."""
    lines = ["| split | metric | n | value | 95% CI | target |", "|---|---|---:|---:|---|---|"]
    for split, report in reports.items():
        for row in metric_rows(report):
            digits = 1 if row["metric"].lstrip().startswith("chrF") else 3
            target = "" if row["target"] is None else (
                f"≥ {row['target']:g} {'meets' if row['value'] >= row['target'] else 'BELOW'}")
            lines.append(f"| {split} | {row['metric']} | {row['n']} | {row['value']:.{digits}f} | "
                         f"[{row['low']:.{digits}f}, {row['high']:.{digits}f}] | {target} |")
    return "\n".join(lines)


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for metric, target in TARGETS.items():
        if metric in report:
            value = report[metric]
            verdict = "meets" if value >= target else "BELOW"
            lines.append(f"{metric:20s} {value:8.3f}   target ≥ {target:g}  {verdict}")
    for metric in ("sentiment_accuracy_by_lang", "qa_f1", "qa_offsets_valid"):
        if metric in report:
            lines.append(f"{metric:20s} {report[metric]}")
    lines.append(f"items                {report['counts']}")
    return lines


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", help="URL of a running Attention Atlas app, e.g. http://127.0.0.1:7860")
    parser.add_argument("--device", default="cpu", help="device for the in-process model (ignored with --api)")
    parser.add_argument("--tasks", default="sentiment,qa,translation", help="comma-separated subset to run")
    parser.add_argument("--limit", type=int, default=0, help="at most this many items per task (0 = all)")
    parser.add_argument("--json", type=Path, help="also write the full report (with per-item records) here")
    parser.add_argument("--quiet", action="store_true", help="only print the summary")
    parser.add_argument("--check", action="store_true", help="exit 1 when a metric is below its target")
    parser.add_argument("--fixed", action="store_true",
                        help="in-process only: the fixed demonstrations instead of the ones chosen per input")


def select_tasks(items: dict[str, list[dict[str, Any]]], tasks: str, limit: int) -> dict[str, list[dict[str, Any]]]:
    wanted = {task.strip() for task in tasks.split(",") if task.strip()}
    return {task: (task_items[: limit or None] if task in wanted else []) for task, task_items in items.items()}


def make_runner(args: argparse.Namespace) -> Runner:
    return api_runner(args.api) if args.api else local_runner(args.device, fixed=args.fixed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=EVAL_DIR / "dev",
                        help="directory of <task>.jsonl or one JSONL file (default: the dev split)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    items = select_tasks(load_items(args.data), args.tasks, args.limit)
    report = evaluate(items, make_runner(args), verbose=not args.quiet)
    print("\n".join(summary_lines(report)))
    print(table({args.data.name: report}))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    below = [metric for metric, target in TARGETS.items() if metric in report and report[metric] < target]
    return 1 if args.check and below else 0


if __name__ == "__main__":
    raise SystemExit(main())
