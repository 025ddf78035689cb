"""``edgeinfer bench``: run the selected benchmarks at each thread count and write the report."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .bench import (
    Benchmark,
    BenchmarkResult,
    DeviceProfile,
    RunConfig,
    collect_environment,
    format_table,
    render_markdown,
    run_benchmark,
    to_json,
    write_plot,
)

__all__ = ["run_and_report"]


def _run_all(
    benchmarks: Sequence[Benchmark], threads: Sequence[int], config: RunConfig
) -> list[BenchmarkResult]:
    from tqdm import tqdm

    total = sum(len(b.build_cases(quick=config.quick)) for b in benchmarks) * len(threads)
    results = []
    with tqdm(total=total, desc="bench", unit="case", file=sys.stderr, disable=None) as bar:
        for count in threads:
            for benchmark in benchmarks:
                bar.set_postfix_str(f"{benchmark.name} @ {count} thread(s)")
                results.append(
                    run_benchmark(benchmark, DeviceProfile(count), config,
                                  on_case=lambda _row: bar.update(1))
                )
    return results


def _write_plots(
    results: Sequence[BenchmarkResult],
    benchmarks: Sequence[Benchmark],
    plot_dir: Path,
    relative_to: Path,
) -> dict[str, str]:
    specs = {b.name: b.plot for b in benchmarks if b.plot is not None}
    links = {}
    for result in results:
        spec = specs.get(result.name)
        if spec is None:
            continue
        key = f"{result.name}-t{result.threads}"
        path = write_plot(result, spec, plot_dir / f"{key}.png")
        if path is not None:
            links[key] = os.path.relpath(path, relative_to)
            print(f"wrote {path}", file=sys.stderr)
    return links


def run_and_report(
    benchmarks: Sequence[Benchmark],
    threads: Sequence[int],
    args: argparse.Namespace,
    command: str,
) -> int:
    """Run, print the tables, write the requested files; 1 if any case failed, else 0."""
    config = RunConfig.quick_run() if args.quick else RunConfig()
    # before the run: the commit (and +dirty) of the code that is loaded, not of whatever the
    # checkout holds by the time a long run ends
    environment = collect_environment()
    results = _run_all(benchmarks, threads, config)
    for result in results:
        print(format_table(result, environment))
    links: dict[str, str] = {}
    if args.plot_dir is not None:
        base = args.markdown.parent if args.markdown is not None else Path.cwd()
        links = _write_plots(results, benchmarks, args.plot_dir, base)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(render_markdown(results, environment, command=command,
                                                 plots=links))
        print(f"wrote {args.markdown}", file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json(results, environment))
        print(f"wrote {args.json}", file=sys.stderr)
    failed = [f"{r.name}/{c.name}" for r in results for c in r.failed]
    if failed:
        print(f"edgeinfer bench: {len(failed)} case(s) failed: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0
