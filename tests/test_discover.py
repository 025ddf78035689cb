"""Every engine benchmark the harness discovers is well formed and builds its cases lazily."""

import pytest

from edgeinfer.bench import Benchmark, discover_benchmarks
from edgeinfer.bench.case import Case

FOUND = discover_benchmarks()


def test_discovered_benchmark_names_are_unique():
    names = [item.benchmark.name for item in FOUND]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("item", FOUND, ids=lambda item: item.benchmark.name)
def test_each_benchmark_declares_quick_cases(item):
    assert isinstance(item.benchmark, Benchmark)
    quick = item.benchmark.build_cases(quick=True)
    full = item.benchmark.build_cases(quick=False)
    assert quick, f"{item.benchmark.name} has no quick case; --quick would print an empty table"
    assert all(isinstance(case, Case) for case in full)
    assert {case.name for case in quick} <= {case.name for case in full}
