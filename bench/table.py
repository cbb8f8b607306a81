"""The benchmark table: rows with measurement, baseline, target and verdict, rendered as Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.stats import Sample

COLUMNS = ("Row", "Baseline", "Measured", "Result", "Target", "Status", "Notes")


@dataclass(frozen=True)
class Target:
    """An upper bound on a row's headline value: ratio (×), seconds or bytes."""

    limit: float
    unit: str  # "x" | "s" | "B"

    def describe(self) -> str:
        return f"≤ {format_value(self.limit, self.unit)}"

    def met_by(self, value: float) -> bool:
        return value <= self.limit


@dataclass
class Row:
    """One line of the table. `value` is the headline number that is checked against `target`."""

    name: str
    baseline: str = "—"
    measured: str = "—"
    value: float | None = None
    unit: str = "x"
    target: Target | None = None
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None        # why the row was not measured in this run
    target_applies: bool = True       # targets are set for the embedded profile; other profiles show them greyed

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return "skipped"
        if self.target is None or self.value is None:
            return "—"
        if not self.target_applies:
            return "(n/a)"
        return "met" if self.target.met_by(self.value) else "MISSED"

    def cells(self) -> list[str]:
        result = "—" if self.value is None else format_value(self.value, self.unit)
        notes = list(self.notes)
        if self.skipped is not None:
            notes.insert(0, self.skipped)
        target = self.target.describe() if self.target else "—"
        return [self.name, self.baseline, self.measured, result, target, self.status, " ".join(notes) or ""]


def format_value(value: float, unit: str) -> str:
    """1.234 x → '1.23×', 0.0123 s → '12.3 ms', 251234 B → '251.2 KB', 1.9e9 B → '1.90 GB' (decimal units)."""
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "s":
        if value < 1.0:
            return f"{value * 1000:.1f} ms"
        return f"{value:.2f} s"
    if unit == "B":
        if value >= 1e9:
            return f"{value / 1e9:.2f} GB"
        if value >= 1e6:
            return f"{value / 1e6:.1f} MB"
        if value >= 1e3:
            return f"{value / 1e3:.1f} KB"
        return f"{value:.0f} B"
    return f"{value:g} {unit}"


def format_sample(sample: Sample, unit: str = "s") -> str:
    """'median (min–max, n=5)'; just the value when there is one measurement."""
    if len(sample) == 1:
        return format_value(sample.median, unit)
    return (
        f"{format_value(sample.median, unit)} "
        f"({format_value(sample.low, unit)}–{format_value(sample.high, unit)}, n={len(sample)})"
    )


def render_markdown(rows: list[Row]) -> str:
    """A GitHub-flavoured Markdown table; pipes inside cells are escaped."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        cells = [cell.replace("|", "\\|").replace("\n", " ") for cell in row.cells()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
