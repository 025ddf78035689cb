"""Frame skipping: the change gate alone, and gated streaming against the plain runner."""

import math

import numpy as np
import pytest
import torch

from edgeinfer.datasets.static_stream import generate_static_stream
from edgeinfer.video.delta import DeltaConfig, DeltaRunner
from edgeinfer.video.registry import create_model
from edgeinfer.video.skip import (
    FrameGate,
    GateConfig,
    GatedRunner,
    GateStats,
    frame_to_tensor,
    logit_jitter,
    top_margin,
)
from edgeinfer.video.stream import StreamingRunner
from tests.video.reference import calibrate


def _flat(value: int, height: int = 36, width: int = 64) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def _decisions(gate: FrameGate, frames) -> list[bool]:
    return [gate.decide(frame) for frame in frames]


def test_first_frame_runs_identical_frames_skip_and_max_skip_forces_a_run():
    gate = FrameGate(GateConfig(threshold=0.5, max_skip=3, noise_floor=0))
    assert _decisions(gate, [_flat(10)] * 9) == [True, False, False, False] * 2 + [True]
    assert gate.stats == GateStats(processed=3, skipped=6)
    assert gate.stats.total == 9 and gate.stats.skip_ratio == pytest.approx(6 / 9)


@pytest.mark.parametrize("config", [GateConfig(threshold=0.0), GateConfig(max_skip=0)])
def test_threshold_zero_or_max_skip_zero_runs_every_frame(config):
    gate = FrameGate(config)
    assert all(_decisions(gate, [_flat(10)] * 5))


def test_change_is_measured_against_the_last_processed_frame():
    # brightness creeps up by 1 grey level a frame: each step is below the threshold, but the
    # distance to the last processed frame grows until it crosses it
    gate = FrameGate(GateConfig(threshold=2.5, max_skip=100, noise_floor=0))
    assert _decisions(gate, [_flat(v) for v in range(10)]) == [True, False, False] * 3 + [True]
    assert gate.last_score == 3.0


def test_noise_floor_ignores_small_differences():
    rng = np.random.default_rng(0)
    base = rng.integers(50, 200, size=(72, 128, 3), dtype=np.uint8)
    noisy = [np.clip(base + rng.integers(-5, 6, base.shape), 0, 255).astype(np.uint8)]
    gate = FrameGate(GateConfig(threshold=0.01, noise_floor=12))
    assert _decisions(gate, [base, *noisy * 3]) == [True, False, False, False]
    assert gate.last_score == 0.0


def test_thumbnail_samples_a_strided_grid_with_integer_grey():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, size=(720, 1280, 3), dtype=np.uint8)
    thumb = FrameGate(GateConfig(thumbnail=(18, 32))).thumbnail(frame)
    assert thumb.shape == (18, 32) and thumb.dtype == np.int16
    rows, cols = 20 + 40 * np.arange(18), 20 + 40 * np.arange(32)  # centred 40-pixel steps
    picked = frame[rows][:, cols].astype(np.int64)
    expected = (77 * picked[..., 0] + 150 * picked[..., 1] + 29 * picked[..., 2]) >> 8
    np.testing.assert_array_equal(thumb, expected)
    small = FrameGate(GateConfig(thumbnail=(18, 32))).thumbnail(frame[:5, :7])
    assert small.shape == (5, 7)  # fewer pixels than the thumbnail asks for: take them all


def test_gate_rejects_bad_frames_and_size_changes():
    gate = FrameGate()
    with pytest.raises(TypeError, match="frame must be a uint8 numpy array"):
        gate.decide(_flat(1).astype(np.float32))
    with pytest.raises(ValueError, match=r"frame must have shape \(H, W, 3\)"):
        gate.decide(np.zeros((8, 8, 4), dtype=np.uint8))
    gate.decide(_flat(1))
    with pytest.raises(ValueError, match="frame size changed mid-stream"):
        gate.decide(_flat(1, 40, 64))
    gate.reset()
    assert gate.decide(_flat(1, 40, 64)) and gate.stats == GateStats(1, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"threshold": -1.0}, ValueError, "threshold must be a finite float >= 0"),
        ({"threshold": "1"}, TypeError, "threshold must be a float"),
        ({"max_skip": -1}, ValueError, "max_skip must be >= 0"),
        ({"max_skip": 2.0}, TypeError, "max_skip must be an int"),
        ({"noise_floor": 300}, ValueError, r"noise_floor must be in \[0, 255\]"),
        ({"thumbnail": (0, 32)}, ValueError, "thumbnail must be"),
    ],
)
def test_gate_config_is_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        GateConfig(**kwargs)


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_static_stream_skips_quiet_frames_and_processes_every_event(seed):
    frames, events = generate_static_stream(seed, frames=200, event_rate=0.015)
    gate = FrameGate(GateConfig(threshold=0.1, max_skip=30, noise_floor=12))
    runs = np.array(_decisions(gate, frames))
    assert events.any()
    assert runs[events].all(), np.flatnonzero(events & ~runs)
    quiet = ~events
    quiet[0] = False  # frame 0 always runs
    assert runs[quiet].mean() < 0.1  # only max_skip refreshes among quiet frames
    assert gate.stats.processed == runs.sum()


# --- gated streaming ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stream():
    frames, events = generate_static_stream(5, frames=40, size=(48, 64), event_rate=0.05)
    clip = torch.stack([frame_to_tensor(f)[0] for f in frames[:6]])
    torch.manual_seed(0)
    model = create_model("tsm_mobilenetv2", num_classes=5, n_segment=6, shift="causal", width=0.25)
    return frames, events, calibrate(model, clip)


@pytest.mark.parametrize("config", [GateConfig(threshold=0.0, max_skip=0), GateConfig(max_skip=0)])
def test_gated_runner_without_skipping_equals_the_plain_runner_exactly(stream, config):
    frames, _, model = stream
    plain = StreamingRunner(model)
    gated = GatedRunner(StreamingRunner(model), FrameGate(config))
    for frame in frames:
        assert torch.equal(gated.step(frame), plain.step(frame_to_tensor(frame)))
    assert gated.stats == GateStats(processed=len(frames), skipped=0)


def test_gated_runner_reuses_logits_and_advances_buffers_on_processed_frames_only(stream):
    frames, events, model = stream
    gated = GatedRunner(StreamingRunner(model), FrameGate(GateConfig(max_skip=5)))
    outputs = [gated.step(frame) for frame in frames]
    runs = [t == 0 or outputs[t] is not outputs[t - 1] for t in range(len(frames))]
    assert gated.stats.skipped > 0 and gated.stats.processed == sum(runs)
    assert events.any() and np.asarray(runs)[events].all()
    assert gated.runner.frames_seen == gated.stats.processed
    # reference: the plain runner fed only the processed frames (stride = gap between them)
    plain = StreamingRunner(model)
    for t in np.flatnonzero(runs):
        assert torch.equal(outputs[t], plain.step(frame_to_tensor(frames[t])))
    gated.reset()
    assert gated.stats == GateStats(0, 0) and gated.runner.frames_seen == 0


def test_gated_delta_runner_equals_the_gated_streaming_runner(stream):
    # threshold 0: the delta runner is the dense model up to float rounding, so the gate sees
    # the same outputs (near-tie reuse included) and makes the same decisions. Noise-free
    # frames, so that the changes stay local and processed frames run sparsely
    _, _, model = stream
    frames, _ = generate_static_stream(5, frames=40, size=(48, 64), event_rate=0.05, noise=0.0)
    config = GateConfig(max_skip=5)
    plain = GatedRunner(StreamingRunner(model), FrameGate(config))
    delta = GatedRunner(DeltaRunner(model, DeltaConfig(threshold=0.0)), FrameGate(config))
    sparse = []
    for frame in frames:
        expected, got = plain.step(frame), delta.step(frame)
        scale = float(expected.abs().max())
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * scale)
        sparse.append(not delta.runner.last_stats.dense)
    assert delta.stats == plain.stats and delta.stats.skipped > 0
    assert delta.runner.frames_seen == delta.stats.processed
    assert any(sparse)  # processed frames after the first ran on their changes only


def test_gated_runner_checks_its_parts(stream):
    _, _, model = stream
    with pytest.raises(TypeError, match="runner must be a StreamingRunner or DeltaRunner"):
        GatedRunner(model)
    with pytest.raises(TypeError, match="gate must be a FrameGate"):
        GatedRunner(StreamingRunner(model), GateConfig())
    with pytest.raises(TypeError, match="preprocess must be callable"):
        GatedRunner(StreamingRunner(model), preprocess=None)


# --- settling after a change, near ties ------------------------------------------------------


def test_gate_settles_after_a_change_and_a_refresh_does_not_restart_settling():
    gate = FrameGate(GateConfig(threshold=0.5, max_skip=4, noise_floor=0, settle=2))
    frames = [_flat(10)] * 9 + [_flat(40)] * 5
    # frame 0 changes (the first), 1-2 settle, 3-6 skip, 7 refreshes (no new settling), 8 skips;
    # frame 9 changes, 10-11 settle, 12-13 skip
    expected = [True, True, True, False, False, False, False, True, False]
    expected += [True, True, True, False, False]
    assert _decisions(gate, frames) == expected
    assert gate.settle == 2 and gate.stats == GateStats(processed=7, skipped=7)


def test_settle_comes_from_the_config_or_else_the_temporal_depth():
    assert FrameGate().settle == 0
    assert FrameGate(temporal_depth=5).settle == 5
    assert FrameGate(GateConfig(settle=1), temporal_depth=5).settle == 1
    with pytest.raises(ValueError, match="temporal_depth must be an int >= 0"):
        FrameGate(temporal_depth=-1)
    with pytest.raises(TypeError, match="settle must be None or an int >= 0"):
        GateConfig(settle=1.5)
    with pytest.raises(ValueError, match="settle must be None or an int >= 0"):
        GateConfig(settle=-1)


def test_force_runs_a_quiet_frame_and_counts_it_as_processed():
    gate = FrameGate(GateConfig(threshold=0.5, noise_floor=0))
    assert [gate.decide(_flat(3), force=f) for f in (False, False, True, False)] == [
        True, False, True, False
    ]
    assert gate.stats == GateStats(processed=2, skipped=2)


@pytest.fixture(scope="module")
def still_scene():
    # noise-free: quiet frames are bit-identical, so a settled model's output is exactly fixed
    frames, events = generate_static_stream(2, frames=70, size=(48, 64), event_rate=0.04,
                                            noise=0.0)
    clip = torch.stack([frame_to_tensor(f)[0] for f in frames[:8]])
    torch.manual_seed(1)
    model = create_model("tsm_resnet18", num_classes=6, n_segment=8, shift="causal",
                         width=0.125, fold_div=4)
    return frames, events, calibrate(model, clip)


def _every_and_gated(model, frames, config):
    plain = StreamingRunner(model)
    every = [plain.step(frame_to_tensor(frame)) for frame in frames]
    # a thumbnail of every pixel and no dead zone: any change of the picture is seen
    gated = GatedRunner(StreamingRunner(model), FrameGate(config))
    return every, [gated.step(frame) for frame in frames], gated


@pytest.mark.parametrize("settle", [None, 8])
def test_a_settled_gate_reuses_exactly_the_every_frame_output(still_scene, settle):
    frames, events, model = still_scene
    assert model.num_shift_sites == 8 and events.any() and not events.all()
    config = GateConfig(threshold=1e-9, max_skip=1000, noise_floor=0, thumbnail=(48, 64),
                        settle=settle)
    every, gated, runner = _every_and_gated(model, frames, config)
    assert runner.gate.settle == 8  # None: bound to the model's shift sites
    assert runner.stats.skipped > len(frames) // 4
    for t, (want, got) in enumerate(zip(every, gated, strict=True)):
        assert torch.equal(want, got), t


def test_skipping_before_the_model_settles_departs_from_every_frame(still_scene):
    frames, _, model = still_scene
    config = GateConfig(threshold=1e-9, max_skip=1000, noise_floor=0, thumbnail=(48, 64),
                        settle=7)
    every, gated, _ = _every_and_gated(model, frames, config)
    assert any(not torch.equal(want, got) for want, got in zip(every, gated, strict=True))


def test_min_margin_processes_near_ties(still_scene):
    frames, _, model = still_scene
    plain = StreamingRunner(model)
    gated = GatedRunner(StreamingRunner(model), FrameGate(GateConfig(threshold=1e9)),
                        min_margin=math.inf)  # no output is sure enough: every frame runs
    for frame in frames[:12]:
        assert torch.equal(gated.step(frame), plain.step(frame_to_tensor(frame)))
    assert gated.stats == GateStats(processed=12, skipped=0)
    with pytest.raises(ValueError, match="min_margin must be a float >= 0"):
        GatedRunner(StreamingRunner(model), min_margin=-0.1)
    with pytest.raises(ValueError, match="min_margin must be a float >= 0"):
        GatedRunner(StreamingRunner(model), min_margin=math.nan)
    with pytest.raises(TypeError, match="min_margin must be a float"):
        GatedRunner(StreamingRunner(model), min_margin="1")


def test_top_margin_and_logit_jitter(still_scene):
    frames, events, model = still_scene
    assert top_margin(torch.tensor([[1.0, 3.0, 2.5], [0.0, -1.0, 2.0]])) == 2.0 - 0.0 - 1.5
    assert top_margin(torch.tensor([[4.0]])) == math.inf
    still = frames[: int(np.argmax(events))]  # the frames before anything moves
    runner = StreamingRunner(model)
    assert len(still) >= 10 and logit_jitter(runner, still) == 0.0  # noise-free: exact repeat
    noisy = [np.clip(f.astype(np.int16) + (-2, 0, 2)[i % 3], 0, 255).astype(np.uint8)
             for i, f in enumerate(still)]
    assert logit_jitter(runner, noisy) > 0.0 and runner.frames_seen == 0
    with pytest.raises(ValueError, match="frames must hold at least 10 still frames"):
        logit_jitter(runner, still[:9])
