"""Timing helpers: interleaved A/B repetitions, medians and spreads (min–max), ratios of medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """Repeated measurements of one quantity (seconds, bytes, ...), summarised by median and min–max."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(float(value))

    @property
    def median(self) -> float:
        if not self.values:
            raise ValueError("no measurements were taken")
        return float(statistics.median(self.values))

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class Paired:
    """A baseline and a measured quantity timed in the same run, interleaved (A B A B ...)."""

    baseline: Sample
    measured: Sample

    @property
    def ratio(self) -> float:
        """Ratio of medians, measured / baseline."""
        return self.measured.median / self.baseline.median


def time_call(function: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, return value) of one call, on the monotonic high-resolution clock."""
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def interleave(functions: Sequence[Callable[[], Any]], repetitions: int, warmup: int = 1) -> list[Sample]:
    """Time every function once per round, round after round (A B A B ...), after `warmup` untimed rounds.

    Interleaving spreads slow drifts of the machine (other processes, thermal limits, caches) over every side,
    so ratios of medians compare like with like. The order rotates each round (A B C, B C A, ...) so no side
    always runs right after the same other one.
    """
    if repetitions < 1:
        raise ValueError(f"repetitions must be at least 1, got {repetitions}")
    for _ in range(warmup):
        for function in functions:
            function()
    samples = [Sample() for _ in functions]
    for round_index in range(repetitions):
        shift = round_index % len(functions)
        order = list(range(len(functions)))[shift:] + list(range(len(functions)))[:shift]
        for index in order:
            seconds, _ = time_call(functions[index])
            samples[index].add(seconds)
    return samples


def paired(baseline: Callable[[], Any], measured: Callable[[], Any], repetitions: int, warmup: int = 1) -> Paired:
    """`interleave` of a baseline and a measured function."""
    baseline_sample, measured_sample = interleave([baseline, measured], repetitions, warmup)
    return Paired(baseline_sample, measured_sample)


def repeat(function: Callable[[], Any], repetitions: int, warmup: int = 0) -> Sample:
    """Time `function` `repetitions` times after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    sample = Sample()
    for _ in range(repetitions):
        seconds, _ = time_call(function)
        sample.add(seconds)
    return sample
