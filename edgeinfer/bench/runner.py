"""Run a benchmark's cases under a device profile and collect the results."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .allocator import steady_allocator
from .case import Benchmark, Case
from .macs import count_macs
from .memory import measure_peak_rss, measure_peak_rss_in_child
from .profile import DeviceProfile, device_profile
from .timing import Stats, time_pair

__all__ = ["BenchmarkResult", "CaseResult", "RunConfig", "run_benchmark", "run_case"]


@dataclass(frozen=True)
class RunConfig:
    """Repeat counts and time budget. ``RunConfig.quick()`` keeps a run under a minute."""

    warmup: int = 2
    repeats: int = 15
    min_repeats: int = 5
    budget_s: float = 10.0
    quick: bool = False

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.repeats < 1 or not 1 <= self.min_repeats <= self.repeats:
            raise ValueError(
                "RunConfig needs warmup >= 0 and 1 <= min_repeats <= repeats; got "
                f"warmup={self.warmup}, min_repeats={self.min_repeats}, repeats={self.repeats}"
            )
        if self.budget_s <= 0:
            raise ValueError(f"RunConfig.budget_s must be > 0; got {self.budget_s}")

    @classmethod
    def quick_run(cls) -> RunConfig:
        return cls(warmup=1, repeats=5, min_repeats=3, budget_s=1.5, quick=True)


@dataclass
class CaseResult:
    """One table row: timings of both sides, memory, MACs and quality."""

    name: str
    params: dict[str, float]
    threads: int
    baseline_wall: Stats | None = None
    candidate_wall: Stats | None = None
    baseline_cpu: Stats | None = None
    candidate_cpu: Stats | None = None
    speedup: float | None = None
    cpu_speedup: float | None = None
    baseline_peak_mb: float | None = None
    candidate_peak_mb: float | None = None
    peak_exact: bool = True
    peak_isolated: bool = False  # peaks measured in fresh processes (Benchmark.isolate_memory)
    baseline_macs: int | None = None
    candidate_macs: int | None = None
    quality: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None


@dataclass
class BenchmarkResult:
    """All rows of one benchmark at one thread count."""

    name: str
    title: str
    baseline: str
    candidate: str
    description: str
    threads: int
    quick: bool
    cases: list[CaseResult]

    @property
    def failed(self) -> list[CaseResult]:
        return [case for case in self.cases if case.error is not None]


def _missing_modules(case: Case) -> list[str]:
    return [name for name in case.requires if importlib.util.find_spec(name) is None]


def run_case(case: Case, profile: DeviceProfile, config: RunConfig, *,
             memory_benchmark: str | None = None) -> CaseResult:
    """Set up ``case`` once, then measure both sides under ``profile``.

    A case whose ``requires`` are missing is skipped with the reason. An exception inside the
    case is recorded in ``error`` (the caller decides whether that fails the run). With
    ``memory_benchmark`` (the name of the discovered benchmark holding ``case``) each side's
    peak RSS is measured in a fresh process.
    """
    import torch

    result = CaseResult(name=case.name, params=dict(case.params), threads=profile.threads)
    missing = _missing_modules(case)
    if missing:
        result.skipped = f"needs {', '.join(missing)} (not installed)"
        return result
    try:
        with device_profile(profile), torch.no_grad():
            state = case.setup()
            base_out, base_mem = measure_peak_rss(case.baseline, state)
            cand_out, cand_mem = measure_peak_rss(case.candidate, state)
            if case.quality is not None:
                measured = case.quality(base_out, cand_out, state)
                result.quality = {name: float(value) for name, value in measured.items()}
            del base_out, cand_out
            with steady_allocator():  # no side pays page faults for what ran before it
                timing = time_pair(
                    case.baseline,
                    case.candidate,
                    state,
                    warmup=max(0, config.warmup - 1),
                    repeats=config.repeats,
                    min_repeats=config.min_repeats,
                    budget_s=config.budget_s,
                )
            if case.count_macs:
                result.baseline_macs = count_macs(case.baseline, state)
                result.candidate_macs = count_macs(case.candidate, state)
            if memory_benchmark is not None:
                base_mem, cand_mem = (
                    measure_peak_rss_in_child(memory_benchmark, case.name, side, profile.threads)
                    for side in ("baseline", "candidate")
                )
    except Exception as exc:  # recorded and reported; the CLI exits non-zero
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.baseline_wall, result.candidate_wall = timing.baseline_wall, timing.candidate_wall
    result.baseline_cpu, result.candidate_cpu = timing.baseline_cpu, timing.candidate_cpu
    result.speedup, result.cpu_speedup = timing.speedup, timing.cpu_speedup
    result.baseline_peak_mb, result.candidate_peak_mb = base_mem.peak_mb, cand_mem.peak_mb
    result.peak_exact = base_mem.exact and cand_mem.exact
    result.peak_isolated = memory_benchmark is not None
    return result


def run_benchmark(
    benchmark: Benchmark,
    profile: DeviceProfile,
    config: RunConfig | None = None,
    *,
    on_case: Callable[[CaseResult], Any] | None = None,
) -> BenchmarkResult:
    """Run every case of ``benchmark`` (the quick ones if ``config.quick``) under ``profile``.

    ``on_case`` is called after each case (the CLI advances its progress bar there).
    """
    config = config or RunConfig()
    rows = []
    for case in benchmark.build_cases(quick=config.quick):
        row = run_case(case, profile, config,
                       memory_benchmark=benchmark.name if benchmark.isolate_memory else None)
        rows.append(row)
        if on_case is not None:
            on_case(row)
    return BenchmarkResult(
        name=benchmark.name,
        title=benchmark.title,
        baseline=benchmark.baseline,
        candidate=benchmark.candidate,
        description=benchmark.description,
        threads=profile.threads,
        quick=config.quick,
        cases=rows,
    )
