"""The benchmark's quick mode runs end to end on tiny models and prints every row, so bench/run.py cannot rot."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.stats import Sample, interleave
from bench.table import Row, Target, format_value, render_markdown

REPOSITORY = Path(__file__).resolve().parent.parent

# Every row the issue asks for, in the words of the table.
EXPECTED_ROWS = [
    "API end-to-end: generation",
    "API end-to-end: qa",
    "API end-to-end: translation",
    "API end-to-end: sentiment",
    "Attention capture: generate",
    "Generation steps: record top-10 candidates",
    "View switch (layer) at 32 tokens",
    "View switch (layer) at 128 tokens",
    "View switch (layer) at 256 tokens",
    "Payload per view update at 32 tokens",
    "Payload per view update at 128 tokens",
    "Payload per view update at 256 tokens",
    "Long input (Ask, 3,300-character context): attention kept",
    "Long input (Ask, 3,300-character context): first view",
    "Long input (Ask, 3,300-character context): view switch (layer)",
    "Long input (Ask, 3,300-character context): payload per view update",
    "Streaming: time to first token",
    "Cold start: page answers",
    "Embedded model load, converted cache",
    "Embedded model load, no cache (first use)",
    "Peak RSS after loading the model(s)",
    "Peak RSS after",
]
# Rows that the quick mode (tiny models, no embedded model) must actually measure.
MEASURED_IN_QUICK_MODE = [name for name in EXPECTED_ROWS if not name.startswith("Embedded model load")]
# Measured 57–68 s on 2 cores (tiny models; the benchmark and the apps it starts); a row that ran the real model
# or a load run would cost minutes.
QUICK_CPU_SECONDS = 90.0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, float, float]:
    """(stdout, written document, wall seconds, CPU seconds of the benchmark and the app it started)."""
    output = tmp_path_factory.mktemp("bench") / "performance.md"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--write", str(output)],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=300,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert completed.returncode == 0, completed.stderr[-4000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return completed.stdout, output.read_text(encoding="utf-8"), wall, cpu


def table_rows(document: str) -> dict[str, list[str]]:
    """Row name → its cells, from the Markdown table in `document`."""
    rows = {}
    for line in document.splitlines():
        if line.startswith("| ") and not line.startswith("| Row ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows[cells[0]] = cells
    return rows


def find_row(rows: dict[str, list[str]], prefix: str) -> list[str]:
    matches = [cells for name, cells in rows.items() if name.startswith(prefix)]
    assert matches, f"the table has no row starting with {prefix!r}; rows: {list(rows)}"
    return matches[0]


def test_quick_mode_prints_every_row(quick_run):
    stdout, _, _, _ = quick_run
    rows = table_rows(stdout)
    for name in EXPECTED_ROWS:
        find_row(rows, name)


def test_quick_mode_measures_every_row_it_can(quick_run):
    stdout, _, _, _ = quick_run
    rows = table_rows(stdout)
    for name in MEASURED_IN_QUICK_MODE:
        cells = find_row(rows, name)
        assert cells[5] != "skipped", f"{name} was skipped: {cells}"
        assert re.search(r"\d", cells[3]), f"{name} has no measured value: {cells}"


def test_quick_mode_shows_targets_beside_measurements(quick_run):
    stdout, _, _, _ = quick_run
    rows = table_rows(stdout)
    assert find_row(rows, "Attention capture")[4] == "≤ 1.15×"
    assert find_row(rows, "API end-to-end: qa")[4] == "≤ 1.30×"
    assert find_row(rows, "View switch (layer) at 128 tokens")[4] == "≤ 150.0 ms"
    assert find_row(rows, "Payload per view update at 128 tokens")[4] == "≤ 250.0 KB"
    assert find_row(rows, "Cold start")[4] == "≤ 8.00 s"
    assert find_row(rows, "Peak RSS after loading")[4] == "≤ 2.50 GB"


def seconds_of(cell: str) -> float:
    """The median of a timing cell such as '281.1 ms (94.1 ms–335.7 ms, n=3)', in seconds."""
    value, unit = re.match(r"([\d.]+) (ms|s)\b", cell).groups()
    return float(value) * (1e-3 if unit == "ms" else 1.0)


def test_quick_mode_ratios_compare_interleaved_medians(quick_run):
    stdout, _, _, _ = quick_run
    cells = find_row(table_rows(stdout), "API end-to-end: generation")
    ratio = float(cells[3].rstrip("×"))
    assert ratio == pytest.approx(seconds_of(cells[2]) / seconds_of(cells[1]), rel=0.02, abs=0.01)
    assert "n=2" in cells[1] and "n=2" in cells[2]


def test_quick_mode_writes_the_same_table_to_the_file(quick_run):
    stdout, document, _, _ = quick_run
    assert document.startswith("# Performance")
    assert set(table_rows(document)) == set(table_rows(stdout))


def test_quick_mode_is_cheap(quick_run):
    _, _, wall, cpu = quick_run
    # CPU time, not wall time: other work on a shared machine stretches the wall clock, not the work done.
    assert cpu < QUICK_CPU_SECONDS, f"quick mode used {cpu:.0f} s of CPU ({wall:.0f} s wall)"


# --- the pieces, without running anything ------------------------------------------------------------------

def test_interleave_alternates_sides_and_skips_warmup():
    calls: list[str] = []
    samples = interleave([lambda: calls.append("a"), lambda: calls.append("b")], repetitions=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert [len(sample) for sample in samples] == [3, 3]


def test_sample_reports_median_and_range():
    sample = Sample([3.0, 1.0, 2.0, 10.0])
    assert (sample.median, sample.low, sample.high) == (2.5, 1.0, 10.0)


def test_rows_say_met_missed_or_not_applicable():
    target = Target(1.15, "x")
    assert Row("a", value=1.1, target=target).status == "met"
    assert Row("b", value=1.2, target=target).status == "MISSED"
    assert Row("c", value=1.2, target=target, target_applies=False).status == "(n/a)"
    assert Row("d", skipped="not asked for").status == "skipped"


def test_markdown_escapes_pipes_in_cells():
    table = render_markdown([Row("a|b", notes=["x | y"])])
    assert "a\\|b" in table and "x \\| y" in table


def test_values_use_readable_units():
    assert format_value(0.0123, "s") == "12.3 ms"
    assert format_value(2.5, "s") == "2.50 s"
    assert format_value(251_234, "B") == "251.2 KB"
    assert format_value(1.9e9, "B") == "1.90 GB"
    assert format_value(1.234, "x") == "1.23×"


def test_a_missed_class_load_p95_says_what_throughput_it_would_take() -> None:
    from bench.load import LoadRun, waiting_note

    run = LoadRun(seconds=[float(second) for second in range(1, 11)] * 6, wall_seconds=20.0)  # 3 answers/s
    note = waiting_note(run, users=20)
    assert "at 3.00 answers/s wait 5.5 s on average" in note and "20 / 3.00 = 6.7 s" in note
    assert "p95 is 1.8× that mean" in note and "about 2.0× this throughput" in note   # 20 · 1.82 / 6 / 3
