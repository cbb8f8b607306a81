"""`python -m eval`: score every split present (eval/dev, then eval/test) and print one table with 95% bootstrap
intervals and the per-category breakdown. Options as eval/evaluate.py, plus --splits."""

from __future__ import annotations

import argparse
import json
import sys

from eval.evaluate import (EVAL_DIR, SPLITS, TARGETS, add_common_arguments, evaluate, load_items, make_runner,
                           select_tasks, summary_lines, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    parser.add_argument("--splits", default=",".join(SPLITS), help="comma-separated splits under eval/ to score")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    splits = [split.strip() for split in args.splits.split(",") if (EVAL_DIR / split.strip()).is_dir()]
    if not splits:
        print(f"no split found among {args.splits!r} under {EVAL_DIR}", file=sys.stderr)
        return 2
    runner = make_runner(args)
    reports = {}
    for split in splits:
        items = select_tasks(load_items(EVAL_DIR / split), args.tasks, args.limit)
        reports[split] = evaluate(items, runner, verbose=not args.quiet)
        print(f"--- {split}")
        print("\n".join(summary_lines(reports[split])))
    print()
    print(table(reports))
    if args.json:
        args.json.write_text(json.dumps(reports, ensure_ascii=False, indent=1), encoding="utf-8")
    below = [(split, metric) for split, report in reports.items() for metric, target in TARGETS.items()
             if metric in report and report[metric] < target]
    return 1 if args.check and below else 0


if __name__ == "__main__":
    raise SystemExit(main())
