"""The harness reports what it measured: a slower candidate is slower, settings come back."""

import os

import pytest
import torch

from edgeinfer.bench import Benchmark, Case, DeviceProfile, RunConfig, run_benchmark, run_case
from tests.bench.toys import faster_case, slower_case, toy_benchmark

FAST = RunConfig(warmup=1, repeats=5, min_repeats=5, budget_s=30.0)


def test_a_deliberately_slower_candidate_reports_speedup_below_one():
    row = run_case(slower_case(), DeviceProfile(1), FAST)
    assert row.error is None
    assert row.speedup < 1.0
    assert row.cpu_speedup < 1.0
    assert row.quality == {"max abs err": 0.0}
    assert row.candidate_macs == 4 * row.baseline_macs == 4 * 192**3


def test_a_faster_candidate_reports_speedup_above_one():
    row = run_case(faster_case(), DeviceProfile(1), FAST)
    assert row.speedup > 1.0


def test_setup_runs_once_and_both_sides_see_its_state():
    made, seen = [], []

    def setup():
        made.append(object())
        return made[-1]

    case = Case("same input", setup, seen.append, seen.append, count_macs=False)
    run_case(case, DeviceProfile(1), FAST)
    assert len(made) == 1
    assert seen and all(item is made[0] for item in seen)


def test_thread_settings_are_restored_after_a_benchmark_run():
    saved = torch.get_num_threads()
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        torch.set_num_threads(2)
        inside = []
        case = Case("probe", lambda: None, lambda _: inside.append(torch.get_num_threads()),
                    lambda _: None, count_macs=False)
        run_benchmark(Benchmark("probe", "t", "b", lambda: [case]), DeviceProfile(1), FAST)
        assert set(inside) == {1}
        assert torch.get_num_threads() == 2
        assert os.environ.get("OMP_NUM_THREADS") == omp
    finally:
        torch.set_num_threads(saved)


def test_a_failing_case_is_recorded_and_settings_still_restored():
    saved = torch.get_num_threads()

    def broken(_):
        raise RuntimeError("kaput")

    row = run_case(Case("broken", lambda: None, broken, broken), DeviceProfile(1), FAST)
    assert row.error == "RuntimeError: kaput"
    assert row.speedup is None
    assert torch.get_num_threads() == saved


def test_a_case_needing_a_missing_peer_is_skipped_with_the_reason():
    case = Case("peer", lambda: None, print, print, requires=("no_such_peer_module",))
    row = run_case(case, DeviceProfile(1), FAST)
    assert row.skipped == "needs no_such_peer_module (not installed)"


def test_quick_runs_only_quick_cases_and_reports_progress():
    done = []
    result = run_benchmark(toy_benchmark(), DeviceProfile(1), RunConfig.quick_run(),
                           on_case=done.append)
    assert [row.name for row in result.cases] == ["4x the work", "quarter the work"]
    assert done == result.cases
    assert result.threads == 1 and result.quick


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"repeats": 0}, "min_repeats <= repeats"), ({"budget_s": 0}, "budget_s")],
)
def test_run_config_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**kwargs)


def test_case_and_benchmark_validate_their_fields():
    with pytest.raises(TypeError, match="params\\['x'\\] must be a number"):
        Case("c", print, print, print, params={"x": "big"})
    with pytest.raises(ValueError, match="typed on the command line"):
        Benchmark("Not A Name", "t", "b", list)
    with pytest.raises(ValueError, match="duplicate case names"):
        Benchmark("dup", "t", "b", lambda: [slower_case("a"), faster_case("a")]).build_cases()


def test_peak_memory_in_a_fresh_process_sees_the_dense_output():
    from edgeinfer.bench import measure_peak_rss_in_child
    from edgeinfer.common_sparse.bench import BENCHMARKS

    case = next(c for c in BENCHMARKS[0].build_cases(quick=True) if "64^3 C16 occ 0.5%" in c.name)
    dense = measure_peak_rss_in_child("sparse-core", case.name, "baseline", 1)
    sparse = measure_peak_rss_in_child("sparse-core", case.name, "candidate", 1)
    assert dense.exact and sparse.exact
    # the dense side writes a (16, 64, 64, 64) float32 output: 16 MiB it did not have before
    assert dense.growth_mb >= 15.0
    assert sparse.growth_mb < dense.growth_mb


def test_peak_memory_in_a_fresh_process_names_a_missing_case():
    from edgeinfer.bench import measure_peak_rss_in_child

    with pytest.raises(RuntimeError, match="no case 'nope'"):
        measure_peak_rss_in_child("sparse-core", "nope", "baseline", 1)
    with pytest.raises(ValueError, match="side"):
        measure_peak_rss_in_child("sparse-core", "nope", "both", 1)
