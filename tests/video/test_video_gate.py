"""Frame skipping: the change gate alone, and gated streaming against the plain runner."""

import numpy as np
import pytest
import torch

from edgeinfer.datasets.static_stream import generate_static_stream
from edgeinfer.video.registry import create_model
from edgeinfer.video.skip import FrameGate, GateConfig, GatedRunner, GateStats, frame_to_tensor
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


def test_gated_runner_checks_its_parts(stream):
    _, _, model = stream
    with pytest.raises(TypeError, match="runner must be a StreamingRunner"):
        GatedRunner(model)
    with pytest.raises(TypeError, match="gate must be a FrameGate"):
        GatedRunner(StreamingRunner(model), GateConfig())
    with pytest.raises(TypeError, match="preprocess must be callable"):
        GatedRunner(StreamingRunner(model), preprocess=None)
