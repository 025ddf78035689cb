"""Tables, JSON and plots carry the header and every row, including skipped and failed ones."""

import json

import pytest

from edgeinfer.bench import (
    CaseResult,
    DeviceProfile,
    PlotSpec,
    RunConfig,
    format_table,
    render_markdown,
    run_benchmark,
    summarize,
    to_json,
    tradeoff_points,
    write_plot,
)
from edgeinfer.bench.runner import BenchmarkResult
from tests.bench.toys import toy_benchmark

ENVIRONMENT = {"cpu": "Test CPU 9000", "cores": 2, "cpu_capability": "AVX2", "torch": "2.13.0",
               "numpy": "2", "python": "3.11", "edgeinfer": "0.1.0", "commit": "abc1234567",
               "date": "2026-11-21 00:00 UTC"}


def _result() -> BenchmarkResult:
    done = CaseResult("done", {"work": 2.0}, threads=2, baseline_wall=summarize([4.0, 5.0, 6.0]),
                      candidate_wall=summarize([2.0, 2.5, 3.0]), baseline_cpu=summarize([4.0]),
                      candidate_cpu=summarize([2.0]), speedup=2.0, cpu_speedup=2.0,
                      baseline_peak_mb=300.0, candidate_peak_mb=310.0, baseline_macs=2_000_000,
                      candidate_macs=None, quality={"max abs err": 1.5e-7})
    skipped = CaseResult("peer", {}, threads=2, skipped="needs spconv (not installed)")
    failed = CaseResult("broken", {}, threads=2, error="RuntimeError: kaput")
    return BenchmarkResult("toy", "Toy", "dense", "edgeinfer", "", 2, False,
                           [done, skipped, failed])


def test_table_has_header_and_every_row():
    table = format_table(_result(), ENVIRONMENT)
    assert "Threads: 2" in table and "torch 2.13.0" in table
    assert "Test CPU 9000" in table and "commit abc1234567" in table
    assert "| case | baseline ms | edgeinfer ms | speed-up × | quality |" in table
    assert "| done | 5 (4.2–5.8) | 2.5 (2.1–2.9) | 2.00 | max abs err 1.5e-07 |" in table
    assert "| 300 / 310 | 2M / – |" in table
    assert "skipped: needs spconv (not installed)" in table
    assert "**failed**: RuntimeError: kaput" in table


def test_markdown_document_names_its_command_and_links_plots():
    text = render_markdown([_result()], ENVIRONMENT, command="edgeinfer bench all",
                           plots={"toy-t2": "benchmarks/plots/toy-t2.png"})
    assert "Written by `edgeinfer bench all`" in text
    assert "(benchmarks/plots/toy-t2.png)" in text
    assert "- CPU: Test CPU 9000 (2 cores available" in text


def test_json_round_trips_every_number():
    payload = json.loads(to_json([_result()], ENVIRONMENT))
    row = payload["results"][0]["cases"][0]
    assert payload["environment"]["commit"] == "abc1234567"
    assert row["speedup"] == 2.0 and row["baseline_wall"]["median"] == 5.0
    assert payload["results"][0]["cases"][2]["error"] == "RuntimeError: kaput"


def test_plot_is_written_for_a_curve_shaped_benchmark(tmp_path):
    benchmark = toy_benchmark()
    result = run_benchmark(benchmark, DeviceProfile(1), RunConfig.quick_run())
    path = write_plot(result, benchmark.plot, tmp_path / "toy.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_plot_for_a_single_point(tmp_path):
    benchmark = toy_benchmark()
    result = run_benchmark(benchmark, DeviceProfile(1), RunConfig.quick_run())
    result.cases = result.cases[:1]
    assert write_plot(result, benchmark.plot, tmp_path / "one.png") is None
    assert not (tmp_path / "one.png").exists()


def test_tradeoff_panel_points_are_each_cases_quality_and_speedup(tmp_path):
    benchmark = toy_benchmark()
    spec = PlotSpec(x="work", xlabel="relative work", series="work",
                    series_labels=((4, "heavy"),), tradeoff=("max abs err",))
    result = run_benchmark(benchmark, DeviceProfile(1), RunConfig.quick_run())
    points = tradeoff_points(result, spec, "max abs err")
    by_case = {case.params["work"]: case for case in result.cases}
    assert set(points) == {"heavy", "work=0.25"}  # a named and an unnamed series value
    for label, work in (("heavy", 4), ("work=0.25", 0.25)):
        case = by_case[work]
        assert points[label] == [(case.quality["max abs err"], case.speedup)]
    assert tradeoff_points(result, spec, "no such key") == {}
    path = write_plot(result, spec, tmp_path / "tradeoff.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_spec_rejects_malformed_labels_and_keys():
    with pytest.raises(TypeError, match="series_labels"):
        PlotSpec(x="a", xlabel="a", series_labels=[(1, "one")])
    with pytest.raises(TypeError, match="tradeoff"):
        PlotSpec(x="a", xlabel="a", tradeoff="cos")
