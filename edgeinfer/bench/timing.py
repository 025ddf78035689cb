"""Interleaved timing of a baseline and a candidate on the same input.

Wall time (``time.perf_counter``) and the main thread's CPU time (``time.thread_time``) are
taken for every call. On a shared, noisy machine the CPU time shows how much of a slow sample
was the process waiting rather than working. Order alternates every repeat (baseline first on
even repeats, candidate first on odd ones) so neither side always runs on a warm cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PairTiming", "Stats", "summarize", "time_interleaved", "time_pair"]


@dataclass(frozen=True)
class Stats:
    """Summary of repeated measurements in milliseconds."""

    median: float
    p10: float
    p90: float
    samples: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.samples)


def summarize(samples_ms: list[float] | tuple[float, ...]) -> Stats:
    """Median, 10th and 90th percentile of ``samples_ms`` (linear interpolation)."""
    if len(samples_ms) == 0:
        raise ValueError("summarize needs at least one sample; got none")
    values = np.asarray(samples_ms, dtype=np.float64)
    p10, median, p90 = np.percentile(values, [10.0, 50.0, 90.0])
    return Stats(float(median), float(p10), float(p90), tuple(float(v) for v in values))


@dataclass(frozen=True)
class PairTiming:
    """Wall and main-thread CPU time of both sides, measured interleaved."""

    baseline_wall: Stats
    candidate_wall: Stats
    baseline_cpu: Stats
    candidate_cpu: Stats

    @property
    def speedup(self) -> float:
        """Baseline median wall time over candidate median wall time (> 1: candidate faster)."""
        return _ratio(self.baseline_wall.median, self.candidate_wall.median)

    @property
    def cpu_speedup(self) -> float:
        """The same ratio on main-thread CPU time."""
        return _ratio(self.baseline_cpu.median, self.candidate_cpu.median)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def _timed(fn: Callable[[Any], Any], inputs: Any) -> tuple[float, float]:
    cpu0 = time.thread_time()
    wall0 = time.perf_counter()
    fn(inputs)
    wall1 = time.perf_counter()
    cpu1 = time.thread_time()
    return (wall1 - wall0) * 1e3, (cpu1 - cpu0) * 1e3


def time_pair(
    baseline: Callable[[Any], Any],
    candidate: Callable[[Any], Any],
    inputs: Any,
    *,
    warmup: int = 1,
    repeats: int = 10,
    min_repeats: int = 3,
    budget_s: float = float("inf"),
) -> PairTiming:
    """Time ``baseline(inputs)`` and ``candidate(inputs)`` interleaved.

    ``warmup`` untimed rounds run first. Then up to ``repeats`` timed rounds, each timing both
    sides once; after ``min_repeats`` rounds, timing stops early once ``budget_s`` seconds of
    timed rounds have passed (so ``--quick`` stays quick on slow cases).

    Raises:
        ValueError: ``repeats`` or ``min_repeats`` below 1, or ``warmup`` negative.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0; got {warmup}")
    if repeats < 1 or min_repeats < 1:
        raise ValueError(f"repeats and min_repeats must be >= 1; got {repeats}, {min_repeats}")
    for _ in range(warmup):
        baseline(inputs)
        candidate(inputs)
    base_wall: list[float] = []
    cand_wall: list[float] = []
    base_cpu: list[float] = []
    cand_cpu: list[float] = []
    start = time.perf_counter()
    for index in range(repeats):
        if index % 2 == 0:
            bw, bc = _timed(baseline, inputs)
            cw, cc = _timed(candidate, inputs)
        else:
            cw, cc = _timed(candidate, inputs)
            bw, bc = _timed(baseline, inputs)
        base_wall.append(bw)
        cand_wall.append(cw)
        base_cpu.append(bc)
        cand_cpu.append(cc)
        if index + 1 >= min_repeats and time.perf_counter() - start > budget_s:
            break
    return PairTiming(
        summarize(base_wall), summarize(cand_wall), summarize(base_cpu), summarize(cand_cpu)
    )


def time_interleaved(
    sides: Mapping[str, Callable[[], Any]], *, warmup: int = 1, repeats: int = 10
) -> dict[str, Stats]:
    """Wall time of three or more no-argument ``sides``, each repeat calling every side once in
    the given order (after ``warmup`` untimed rounds). For a baseline/candidate pair use
    :func:`time_pair`, which also alternates the order.

    Raises:
        ValueError: no sides, ``repeats < 1`` or ``warmup < 0``.
    """
    if not sides or repeats < 1 or warmup < 0:
        raise ValueError(
            f"time_interleaved needs sides, repeats >= 1 and warmup >= 0; got {len(sides)} "
            f"sides, repeats={repeats}, warmup={warmup}"
        )
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: summarize(values) for name, values in samples.items()}
