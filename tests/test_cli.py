"""The command line: clear one-line errors with exit status 2, and a bench that writes files."""

import json
import subprocess
import sys

import pytest

import edgeinfer.bench
from edgeinfer.bench import DiscoveredBenchmark
from edgeinfer.cli import ENGINES, _demo_module, main
from tests.bench.toys import toy_benchmark


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "pointclod"], "unknown engine 'pointclod'; choose from"),
        (["bench", "vidoe"], "did you mean 'video'"),
        (["bench", "all", "--threads", "1,x"], "--threads: threads must be a comma-separated"),
        (["bench", "all", "--threads", "0"], "positive integers or 'all'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: command"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_bad_input_from_the_installed_command_has_no_traceback():
    run = subprocess.run([sys.executable, "-m", "edgeinfer.cli", "bench", "nope"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().startswith("edgeinfer bench: unknown engine or benchmark 'nope'")
    assert "Traceback" not in run.stderr


def test_info_reports_versions_cpu_threads_and_runtimes(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for needle in ("edgeinfer 0.1.0", "cpu:", "threads: torch intra-op", "torch 2.13.0",
                   "optional runtimes:", "onnxruntime:", "spconv:", "engines:"):
        assert needle in out


def test_demo_all_runs_or_reports_not_built_for_every_engine(capsys):
    assert main(["demo", "all"]) == 0
    out = capsys.readouterr().out
    for engine in ENGINES:
        if _demo_module(engine) is None:
            assert f"the {engine} engine is not built yet" in out
        else:
            assert f"== demo {engine}\n" in out


def test_demo_options_go_to_that_demo_and_not_to_all(capsys):
    with pytest.raises(SystemExit) as stop:  # the nlp demo's own parser prints its help
        main(["demo", "nlp", "--help"])
    assert stop.value.code == 0
    assert "--generate" in capsys.readouterr().out
    assert main(["demo", "all", "--docs", "3"]) == 2
    assert "edgeinfer demo all takes no demo options" in capsys.readouterr().err


def test_bench_writes_table_json_and_plot(tmp_path, monkeypatch, capsys):
    found = [DiscoveredBenchmark("toys", toy_benchmark())]
    monkeypatch.setattr(edgeinfer.bench, "discover_benchmarks", lambda: found)
    markdown, data, plots = tmp_path / "B.md", tmp_path / "r.json", tmp_path / "plots"
    argv = ["bench", "toy", "--quick", "--threads", "1,2", "--markdown", str(markdown),
            "--json", str(data), "--plot-dir", str(plots)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("| 4x the work |") == 2  # once per thread count
    text = markdown.read_text()
    assert "Written by `edgeinfer bench toy --quick --threads 1,2" in text
    assert "Toy matmuls — 2 threads (quick)" in text
    assert "](plots/toy-t1.png)" in text and (plots / "toy-t2.png").exists()
    assert [r["threads"] for r in json.loads(data.read_text())["results"]] == [1, 2]


def test_bench_exits_1_when_a_case_fails(monkeypatch, capsys):
    from edgeinfer.bench import Benchmark, Case

    def broken(_):
        raise RuntimeError("kaput")

    bad = Benchmark("bad", "Bad", "none", lambda: [Case("c", lambda: None, broken, broken)])
    monkeypatch.setattr(edgeinfer.bench, "discover_benchmarks",
                        lambda: [DiscoveredBenchmark("toys", bad)])
    assert main(["bench", "bad", "--quick"]) == 1
    captured = capsys.readouterr()
    assert "**failed**: RuntimeError: kaput" in captured.out
    assert "1 case(s) failed: bad/c" in captured.err


def test_every_nlp_benchmark_is_reachable_by_name_by_engine_and_by_all():
    from edgeinfer.cli import _select_benchmarks

    names = ("nlp", "nlp-kv", "nlp-hat")
    for name in names[1:]:  # `nlp` names the engine: it selects all three
        selected, unbuilt = _select_benchmarks(name)
        assert [f.benchmark.name for f in selected] == [name] and not unbuilt
    assert [f.benchmark.name for f in _select_benchmarks("nlp")[0]] == list(names)
    assert set(names) <= {f.benchmark.name for f in _select_benchmarks("all")[0]}


def test_only_picks_benchmarks_within_the_target():
    from edgeinfer.cli import _only, _select_benchmarks

    selected, _ = _select_benchmarks("nlp")
    assert [f.benchmark.name for f in _only(selected, "nlp", "nlp")] == ["nlp"]
    assert [f.benchmark.name for f in _only(selected, "nlp-hat, nlp", "nlp")] == ["nlp", "nlp-hat"]


def test_only_rejects_a_name_outside_the_target(capsys):
    assert main(["bench", "nlp", "--only", "nlp,video"]) == 2
    err = capsys.readouterr().err
    assert "'video' is not a benchmark of 'nlp'" in err and "nlp, nlp-kv, nlp-hat" in err
    assert main(["bench", "video", "--only", " , "]) == 2
    assert "--only needs a comma list" in capsys.readouterr().err


def test_bench_records_the_environment_before_running(monkeypatch, capsys):
    # a long run must name the commit of the code it loaded, not the checkout's at its end
    import edgeinfer._bench_command as command

    order = []
    found = [DiscoveredBenchmark("toys", toy_benchmark())]
    monkeypatch.setattr(edgeinfer.bench, "discover_benchmarks", lambda: found)
    real_env, real_run = command.collect_environment, command._run_all
    monkeypatch.setattr(command, "collect_environment",
                        lambda: order.append("environment") or real_env())
    monkeypatch.setattr(command, "_run_all",
                        lambda *args: order.append("run") or real_run(*args))
    assert main(["bench", "toy", "--quick"]) == 0
    assert order == ["environment", "run"]
    capsys.readouterr()
