"""The video benchmark is discovered and its quick cases build and run once."""

import pytest
import torch

from edgeinfer.bench import discover_benchmarks


def _benchmark():
    found = [item.benchmark for item in discover_benchmarks() if item.benchmark.name == "video"]
    assert len(found) == 1
    return found[0]


def test_video_benchmark_is_discovered_with_a_small_quick_subset():
    benchmark = _benchmark()
    cases = benchmark.build_cases()
    quick = benchmark.build_cases(quick=True)
    assert 1 <= len(quick) < len(cases)
    assert any("changed %" in case.params for case in cases)
    assert {"onnx", "onnxruntime"} <= set(next(c for c in cases if "onnx" in c.name).requires)


@pytest.mark.parametrize(
    "name",
    ["tsn-vs-tsm-small", pytest.param("gate-static-stream", marks=pytest.mark.slow)],  # ~20 s
)
def test_quick_cases_build_and_report_quality(name):
    case = next(c for c in _benchmark().build_cases(quick=True) if c.name == name)
    with torch.no_grad():
        state = case.setup()
        quality = case.quality(case.baseline(state), case.candidate(state), state)
    assert all(0.0 <= value <= 1.0 for value in quality.values()), quality
    if name == "tsn-vs-tsm-small":
        assert quality["MACs equal"] == 1.0


def test_blob_change_covers_the_requested_fraction():
    from edgeinfer.video.bench import blob_change

    frame = torch.zeros(1, 3, 64, 64)
    changed = blob_change(frame, 0.1)
    fraction = float((changed != frame).any(dim=1).float().mean())
    assert 0.08 <= fraction <= 0.12


def test_gate_cost_case_steps_each_gate_through_the_stream():
    case = next(c for c in _benchmark().build_cases(quick=True) if c.name == "gate-cost-720p")
    state = case.setup()
    assert state["frames"].shape[1:] == (720, 1280, 3)
    assert case.baseline(state) is None  # no previous thumbnail yet
    assert case.baseline(state) >= 0.0  # mean absolute grey difference to the last frame
    assert case.candidate(state) is True  # the gate's first frame always runs
    assert isinstance(case.candidate(state), bool)
    assert state["gate"].stats.processed + state["gate"].stats.skipped == 2
    rows, cols = state["gate"].config.thumbnail
    quality = case.quality(None, None, state)
    assert quality == {"resize reads px": 720 * 1280, "gate reads px": rows * cols}


def test_gated_delta_stream_case_matches_every_frame():
    from edgeinfer.video.bench import (
        _quality_gate_delta,
        _setup_gate_delta,
        _stream_every,
        _stream_gated,
    )

    state = _setup_gate_delta(24)
    with torch.no_grad():
        every, gated = _stream_every(state), _stream_gated(state)
    quality = _quality_gate_delta(every, gated, state)
    assert every.shape == gated[0].shape == (24, 9)
    assert quality["rel err"] < 1e-4  # threshold 0, noise-free: reused outputs are exact
    assert 0.0 < quality["skipped"] < 1.0
    assert state["gated"].runner.frames_seen == state["gated"].stats.processed
