"""The batch benchmark's cases compare what they claim: the loop's predictions and the run's."""

from __future__ import annotations

import numpy as np

from edgeinfer.batch import bench
from edgeinfer.bench import discover_benchmarks


def test_batch_benchmark_is_discovered_with_local_and_dask_rows():
    found = {f.benchmark.name: f for f in discover_benchmarks()}
    names = [case.name for case in found["batch"].benchmark.build_cases(quick=True)]
    assert names == [f"{e}-{w}" for e in ("points", "video", "text")
                     for w in ("local", "dask-1", "dask-2")]


def test_points_local_case_runs_and_its_quality_sees_a_changed_label(one_thread):
    case = next(c for c in bench.make_cases() if c.name == "points-local")
    state = case.setup()
    loop, run = case.baseline(state), case.candidate(state)
    assert case.quality(loop, run, state)["same"] == 1.0
    changed = {k: v.copy() for k, v in run.items()}
    first = next(iter(changed))
    changed[first][0] = (changed[first][0] + 1) % 6
    assert case.quality(loop, changed, state)["same"] == 0.0
    assert np.array_equal(loop[first], run[first])
