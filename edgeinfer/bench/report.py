"""Benchmark output: Markdown tables, JSON for machines, PNG plots for curve-shaped results."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from .case import PlotSpec
from .runner import BenchmarkResult, CaseResult
from .timing import Stats

__all__ = [
    "environment_lines",
    "format_table",
    "render_markdown",
    "to_json",
    "tradeoff_points",
    "write_plot",
]

TABLE_HEADER = (
    "| case | baseline ms | edgeinfer ms | speed-up × | quality | CPU ms base / edge "
    "| peak RSS MB base / edge | MACs base / edge |"
)
TABLE_RULE = "|---|---:|---:|---:|---|---:|---:|---:|"


def _ms(stats: Stats | None) -> str:
    if stats is None:
        return "–"
    return f"{stats.median:.3g} ({stats.p10:.3g}–{stats.p90:.3g})"


def _num(value: float | None, fmt: str = ".3g") -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞"
    return format(value, fmt)


def _macs(value: int | None) -> str:
    if value is None:
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return str(value)


def _quality(values: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in values.items()) or "–"


def _row(case: CaseResult) -> str:
    if case.skipped is not None:
        return f"| {case.name} | – | – | – | skipped: {case.skipped} | – | – | – |"
    if case.error is not None:
        return f"| {case.name} | – | – | – | **failed**: {case.error} | – | – | – |"
    cpu = f"{_num(case.baseline_cpu.median)} / {_num(case.candidate_cpu.median)}"
    mark = (" (lifetime)" if not case.peak_exact
            else " (own process)" if case.peak_isolated else "")
    rss = f"{_num(case.baseline_peak_mb, '.0f')} / {_num(case.candidate_peak_mb, '.0f')}{mark}"
    macs = f"{_macs(case.baseline_macs)} / {_macs(case.candidate_macs)}"
    return (
        f"| {case.name} | {_ms(case.baseline_wall)} | {_ms(case.candidate_wall)} "
        f"| {_num(case.speedup, '.2f')} | {_quality(case.quality)} | {cpu} | {rss} | {macs} |"
    )


def environment_lines(environment: Mapping[str, object]) -> list[str]:
    """The header block: CPU, versions, commit, date."""
    return [
        f"- CPU: {environment.get('cpu')} ({environment.get('cores')} cores available, "
        f"torch capability {environment.get('cpu_capability')})",
        f"- torch {environment.get('torch')}, numpy {environment.get('numpy')}, "
        f"Python {environment.get('python')}, edgeinfer {environment.get('edgeinfer')}",
        f"- commit {environment.get('commit')}, run {environment.get('date')}",
    ]


def format_table(result: BenchmarkResult, environment: Mapping[str, object]) -> str:
    """One benchmark at one thread count as a Markdown section with its header."""
    threads = "1 thread" if result.threads == 1 else f"{result.threads} threads"
    lines = [
        f"### {result.title} — {threads}{' (quick)' if result.quick else ''}",
        "",
        f"Baseline: {result.baseline}. Candidate: {result.candidate}. Threads: {result.threads}. "
        f"torch {environment.get('torch')} on {environment.get('cpu')}, "
        f"commit {environment.get('commit')}.",
        "Times are medians with p10–p90 over interleaved repeats on the same input; "
        "speed-up is baseline median / edgeinfer median (wall time).",
    ]
    if result.description:
        lines += ["", result.description]
    lines += ["", TABLE_HEADER, TABLE_RULE, *(_row(case) for case in result.cases), ""]
    return "\n".join(lines)


def render_markdown(
    results: Sequence[BenchmarkResult],
    environment: Mapping[str, object],
    *,
    command: str,
    plots: Mapping[str, str] | None = None,
) -> str:
    """A whole BENCHMARKS.md: provenance, environment, one section per result, plot links."""
    lines = [
        "# edgeinfer benchmarks",
        "",
        f"Written by `{command}`; do not edit by hand (`make bench` regenerates it).",
        "",
        *environment_lines(environment),
        "",
    ]
    plots = plots or {}
    for result in results:
        lines.append(format_table(result, environment))
        key = f"{result.name}-t{result.threads}"
        if key in plots:
            threads = "1 thread" if result.threads == 1 else f"{result.threads} threads"
            lines += [f"![{result.title}, {threads}]({plots[key]})", ""]
    return "\n".join(lines)


def to_json(results: Sequence[BenchmarkResult], environment: Mapping[str, object]) -> str:
    """Every number of the run, for machines."""
    payload = {
        "environment": dict(environment),
        "results": [dataclasses.asdict(result) for result in results],
    }
    return json.dumps(payload, indent=2, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def tradeoff_points(
    result: BenchmarkResult, spec: PlotSpec, key: str
) -> dict[str, list[tuple[float, float]]]:
    """``(quality[key], speed-up)`` of every case that reports ``key``, by series label."""
    points: dict[str, list[tuple[float, float]]] = {}
    for case in result.cases:
        value = case.quality.get(key) if case.quality else None
        if case.speedup is None or value is None or not math.isfinite(value):
            continue
        label = spec.series_label(case.params.get(spec.series))  # "" without a series
        points.setdefault(label, []).append((float(value), case.speedup))
    return points


def write_plot(result: BenchmarkResult, spec: PlotSpec, path: Path) -> Path | None:
    """Latency of both sides and speed-up against ``params[spec.x]``, plus one panel of
    speed-up against each ``spec.tradeoff`` quality key.

    Returns the path, or ``None`` when fewer than two distinct x values were measured.
    """
    rows = [c for c in result.cases if c.speedup is not None and spec.x in c.params]
    if len({c.params[spec.x] for c in rows}) < 2:  # one point is no curve (e.g. --quick)
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    groups: dict[object, list[CaseResult]] = {}
    for row in rows:
        groups.setdefault(row.params.get(spec.series) if spec.series else None, []).append(row)
    panels = 2 + len(spec.tradeoff)
    nrows = (panels + 1) // 2
    fig, axes = plt.subplots(nrows, 2, figsize=(10, 4 * nrows), squeeze=False)
    ax_ms, ax_speed = axes.flat[0], axes.flat[1]
    speedups = []
    for key, members in groups.items():
        members.sort(key=lambda c: c.params[spec.x])
        xs = [c.params[spec.x] for c in members]
        label = spec.series_label(key)
        suffix = f" ({label})" if label else ""
        ax_ms.plot(xs, [c.baseline_wall.median for c in members], "--o",
                   label=result.baseline + suffix)
        ax_ms.plot(xs, [c.candidate_wall.median for c in members], "-o",
                   label=result.candidate + suffix)
        ax_speed.plot(xs, [c.speedup for c in members], "-o", label=label or "speed-up")
        speedups += [c.speedup for c in members]
    ax_speed.axhline(1.0, color="grey", linewidth=0.8)
    if max(speedups) > 20 * min(speedups):  # one series far above the rest: keep all visible
        ax_speed.set_yscale("log")
    ticks = sorted({c.params[spec.x] for c in rows})
    for axis, ylabel in ((ax_ms, "median ms"), (ax_speed, "speed-up ×")):
        axis.set_xlabel(spec.xlabel)
        axis.set_ylabel(ylabel)
        if spec.log_x:
            axis.set_xscale("log")
            axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
            axis.xaxis.set_minor_formatter(NullFormatter())
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis, key in zip(list(axes.flat)[2:], spec.tradeoff, strict=False):
        for label, points in tradeoff_points(result, spec, key).items():
            axis.plot(*zip(*points, strict=True), "o", label=label or "cases", alpha=0.8)
        axis.axhline(1.0, color="grey", linewidth=0.8)
        axis.set_xlabel(f"quality: {key}")
        axis.set_ylabel("speed-up ×")
        axis.set_title(f"speed-up vs {key}", fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[panels:]:
        axis.set_visible(False)
    fig.suptitle(f"{result.title} — {result.threads} thread(s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
