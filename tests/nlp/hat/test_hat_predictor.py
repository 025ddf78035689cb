"""Latency predictors against a known latency law, save/load, profile warnings, the plot."""

import warnings

import numpy as np
import pytest
import torch

from edgeinfer.nlp.hat import (
    LatencyPredictor,
    LatencyProfile,
    SearchSpace,
    config_features,
    plot_predictions,
    split_indices,
)
from tests.nlp.hat.conftest import synthetic_dataset

SPACE = SearchSpace.scaled(hidden=384, layers=6, ffn=1536, heads=12)
PROFILE = LatencyProfile(threads=1, seq_len=128, batch=1, cpu="test CPU", torch="2.x")


def _law(configs):
    """A latency law of the cost terms: fixed cost, per layer, FFN and attention GEMMs."""
    raw = config_features(configs, seq_len=128)
    return 0.4 + 0.3 * raw[:, 1] + 2e-8 * raw[:, 6] + 6e-7 * raw[:, 7] * 32 + 0.02 * raw[:, 5]


def _dataset(count=400, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    configs = tuple(SPACE.sample(rng) for _ in range(count))
    latency = _law(configs) * (1 + noise * rng.standard_normal(count))
    return synthetic_dataset(configs, latency, PROFILE)


def test_split_is_80_10_10_and_disjoint():
    split = split_indices(100, seed=3)
    assert [len(split[k]) for k in ("train", "valid", "test")] == [80, 10, 10]
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(100))
    with pytest.raises(ValueError, match=">= 10 rows"):
        split_indices(9)


def test_linear_predictor_recovers_a_linear_law():
    data = _dataset()
    predictor = LatencyPredictor.fit(data, kind="linear")
    assert predictor.metrics["mape"] < 0.01 and predictor.metrics["n_test"] == 40
    config = SPACE.uniform(0.5)
    assert predictor.predict(config) == pytest.approx(_law([config])[0], rel=1e-3)


def test_mlp_predictor_learns_a_noisy_law_to_the_noise_level():
    data = _dataset(noise=0.01)
    predictor = LatencyPredictor.fit(data, kind="mlp", steps=300)
    assert predictor.metrics["mape"] < 2.5, predictor.metrics  # measured 1.0 (noise 1%)
    test = predictor.split["test"]
    truth = _law([data.configs[i] for i in test])
    predicted = predictor.predict_many([data.configs[i] for i in test])
    assert np.sqrt(np.mean((predicted - truth) ** 2)) < 0.1 * truth.mean()


def test_cpu_target_and_metrics_follow_the_chosen_column():
    config = SPACE.uniform(0.5)
    for target, scale in (("cpu_ms", 0.9), ("cpu_min_ms", 0.85), ("ref_cpu_ms", 1.0)):
        predictor = LatencyPredictor.fit(_dataset(), kind="linear", target=target)
        assert predictor.predict(config) == pytest.approx(scale * _law([config])[0], rel=1e-3)
        assert predictor.reference_ms == pytest.approx(2.0)


def test_save_load_round_trip_keeps_profile_predictions_and_split(tmp_path):
    data = _dataset(count=60)
    for kind in ("linear", "mlp"):
        fitted = LatencyPredictor.fit(data, kind=kind, steps=100)
        loaded = LatencyPredictor.load(fitted.save(tmp_path / f"{kind}.pt"))
        assert loaded.profile == PROFILE and loaded.kind == kind
        assert loaded.metrics == fitted.metrics
        np.testing.assert_array_equal(loaded.split["test"], fitted.split["test"])
        np.testing.assert_allclose(loaded.predict_many(data.configs),
                                   fitted.predict_many(data.configs), rtol=1e-6)  # fmt: skip
        payload = torch.load(tmp_path / f"{kind}.pt", weights_only=True)
        assert payload["model"] == "hat-latency-predictor" and payload["engine"] == "nlp"
    old = tmp_path / "old.pt"  # the pre-envelope layout still loads
    torch.save({"format": "edgeinfer.hat.latency-predictor/1", "kind": fitted.kind,
                "target": fitted.target, "profile": vars(fitted.profile).copy(),
                "head_dim": fitted.head_dim,
                "feature_norm": torch.from_numpy(fitted.feature_norm),
                "latency_norm": fitted.latency_norm, "params": fitted.params,
                "metrics": dict(fitted.metrics), "reference_ms": fitted.reference_ms,
                "split": {k: torch.from_numpy(v) for k, v in fitted.split.items()}}, old)
    np.testing.assert_allclose(LatencyPredictor.load(old).predict_many(data.configs),
                               fitted.predict_many(data.configs), rtol=1e-6)  # fmt: skip


def test_another_profile_warns_naming_both():
    predictor = LatencyPredictor.fit(_dataset(count=40), kind="linear")
    other = LatencyProfile(threads=2, seq_len=128, batch=1, cpu="other CPU", torch="2.x")
    with pytest.warns(UserWarning, match=r"fitted on \[1 thread, .*test CPU.*used for \[2 thr"):
        predictor.predict(SPACE.largest(), other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert predictor.check_profile(PROFILE)


def test_bad_fit_input_and_corrupt_file(tmp_path):
    with pytest.raises(ValueError, match=r"kind must be one of \('linear', 'mlp'\)"):
        LatencyPredictor.fit(_dataset(count=20), kind="gbm")
    with pytest.raises(ValueError, match="target one of"):
        LatencyPredictor.fit(_dataset(count=20), target="median")
    with pytest.raises(TypeError, match="dataset must be a LatencyDataset"):
        LatencyPredictor.fit([1, 2, 3])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable latency predictor"):
        LatencyPredictor.load(bad)
    from edgeinfer._checkpoint import write_envelope

    write_envelope(bad, engine="nlp", model="hat-supernet", config={}, state_dict={})
    with pytest.raises(ValueError, match=r"holds a 'hat-supernet', not a 'hat-latency-predictor'"):
        LatencyPredictor.load(bad)


def test_plot_writes_a_png(tmp_path):
    data = _dataset(count=50, noise=0.02)
    fitted = [LatencyPredictor.fit(data, kind=k, steps=50) for k in ("linear", "mlp")]
    path = plot_predictions(fitted, data, tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one fitted"):
        plot_predictions([], data, tmp_path / "x.png")


def test_fitting_works_under_no_grad_as_in_a_benchmark_setup():
    import torch

    with torch.no_grad():
        predictor = LatencyPredictor.fit(_dataset(count=40), kind="mlp", steps=20)
    assert np.isfinite(predictor.metrics["mape"])
