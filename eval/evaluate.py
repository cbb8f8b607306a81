"""Score the embedded few-shot profile (or a running app through its API) on a small bilingual evaluation set.

    python eval/evaluate.py                                  # the embedded Gemma in this process, eval/*.jsonl
    python eval/evaluate.py --api http://127.0.0.1:7860      # the running app, via gradio_client
    python eval/evaluate.py --data /path/to/heldout          # a directory with sentiment/qa/translation.jsonl,
                                                             # or one .jsonl whose lines carry "task"

Metrics: sentiment accuracy, QA exact match (SQuAD-style normalisation, any listed answer) and token F1,
chrF (sacrebleu's default CHRF: character n-grams, so it also works for Chinese, which has no spaces).
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
TASK_FILES = {"sentiment": "sentiment.jsonl", "qa": "qa.jsonl", "translation": "translation.jsonl"}
TARGETS = {"sentiment_accuracy": 0.95, "qa_exact_match": 0.75, "chrf_en-zh": 30.0, "chrf_zh-en": 58.0}

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

def local_runner(device: str = "cpu") -> Runner:
    sys.path.insert(0, str(EVAL_DIR.parent))
    from service.models.embedded import load_embedded_gemma
    from service.tasks.fewshot import answer_fewshot, classify_fewshot, translate_fewshot
    from service.text import detect_direction

    model, tokenizer = load_embedded_gemma(device)

    def translate(text: str, direction: str) -> dict[str, Any]:
        direction = detect_direction(text) if direction == "auto" else direction
        return translate_fewshot(model, tokenizer, text, direction).prediction

    return {
        "classify": lambda text: classify_fewshot(model, tokenizer, text).prediction,
        "answer": lambda context, question: answer_fewshot(model, tokenizer, context, question).prediction,
        "translate": translate,
    }


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
    from sacrebleu.metrics import CHRF

    most = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else refs[0] for refs in references] for k in range(most)]
    return CHRF().corpus_score(hypotheses, streams).score


# --- evaluation -----------------------------------------------------------------------------------------------

def evaluate(items: dict[str, list[dict[str, Any]]], runner: Runner, verbose: bool = False) -> dict[str, Any]:
    """Run every item through `runner` and return the metrics (plus per-item records under "items")."""
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
                                    "prediction": prediction, "correct": ok})
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
            exact += ok
            f1_total += max(token_f1(answer, gold) for gold in item["answers"])
            offsets_ok += item["context"][prediction["start"]:prediction["end"]] == answer
            report["items"].append({"task": "qa", "input": item["question"], "gold": item["answers"],
                                    "prediction": prediction, "correct": ok})
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
            report["items"].append({"task": "translation", "input": item["text"], "gold": item["references"],
                                    "prediction": prediction})
            log(f"translation [{direction}] {item['text']!r} -> {prediction['translation']!r}")
        for direction, (hypotheses, references) in sorted(by_direction.items()):
            report[f"chrf_{direction}"] = round(chrf(hypotheses, references), 2)
        report["translation_seconds"] = round(time.perf_counter() - started, 1)
    return report


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=EVAL_DIR, help="directory of <task>.jsonl or one JSONL file")
    parser.add_argument("--api", help="URL of a running Attention Atlas app, e.g. http://127.0.0.1:7860")
    parser.add_argument("--device", default="cpu", help="device for the in-process model (ignored with --api)")
    parser.add_argument("--tasks", default="sentiment,qa,translation", help="comma-separated subset to run")
    parser.add_argument("--limit", type=int, default=0, help="at most this many items per task (0 = all)")
    parser.add_argument("--json", type=Path, help="also write the full report (with per-item records) here")
    parser.add_argument("--quiet", action="store_true", help="only print the summary")
    parser.add_argument("--check", action="store_true", help="exit 1 when a metric is below its target")
    args = parser.parse_args(argv)

    items = load_items(args.data)
    wanted = {task.strip() for task in args.tasks.split(",") if task.strip()}
    for task in items:
        items[task] = items[task][: args.limit or None] if task in wanted else []
    runner = api_runner(args.api) if args.api else local_runner(args.device)
    report = evaluate(items, runner, verbose=not args.quiet)
    print("\n".join(summary_lines(report)))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    below = [metric for metric, target in TARGETS.items() if metric in report and report[metric] < target]
    return 1 if args.check and below else 0


if __name__ == "__main__":
    raise SystemExit(main())
