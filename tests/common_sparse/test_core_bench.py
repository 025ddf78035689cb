"""The sparse-core benchmark is discoverable and its quick cases are correct."""

import torch

from edgeinfer.bench import discover_benchmarks
from edgeinfer.common_sparse.bench import BENCHMARKS, SceneSpec, make_scene
from tests.common_sparse.tolerances import CONV_ATOL


def test_benchmark_is_discovered_with_quick_cases():
    names = {item.benchmark.name for item in discover_benchmarks()}
    assert "sparse-core" in names
    quick = BENCHMARKS[0].build_cases(quick=True)
    assert 1 <= len(quick) < len(BENCHMARKS[0].build_cases())


def test_scene_is_deterministic_and_near_the_target_occupancy():
    spec = SceneSpec(32, 0.02, 4)
    first, second = make_scene(spec), make_scene(spec)
    assert (first == second).all()
    assert len(first) == int(0.02 * 32**3)
    assert len({tuple(row) for row in first.tolist()}) == len(first)


def test_smallest_quick_case_agrees_with_dense():
    case = BENCHMARKS[0].build_cases(quick=True)[0]
    state = case.setup()
    with torch.no_grad():
        quality = case.quality(case.baseline(state), case.candidate(state), state)
    assert quality["max abs err"] < CONV_ATOL
