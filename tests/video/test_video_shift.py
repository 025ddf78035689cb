"""Temporal shift against a torch.roll reference; online shift_step against the offline shift."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edgeinfer.video import SHIFT_MODES, shift_step, temporal_shift
from tests.video.reference import roll_shift


@pytest.mark.parametrize("mode", SHIFT_MODES)
@pytest.mark.parametrize(
    ("clips", "n_segment", "channels", "fold_div"),
    [(1, 8, 16, 8), (2, 4, 13, 4), (3, 3, 10, 3), (2, 1, 8, 8), (1, 5, 9, 2), (2, 2, 7, 7)],
)
def test_shift_equals_roll_reference(mode, clips, n_segment, channels, fold_div):
    x = torch.randn(clips * n_segment, channels, 3, 2, generator=torch.Generator().manual_seed(1))
    out = temporal_shift(x, n_segment, fold_div, mode)
    assert torch.equal(out, roll_shift(x, n_segment, fold_div, mode))


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(SHIFT_MODES), clips=st.integers(1, 3), n_segment=st.integers(1, 6),
    channels=st.integers(2, 20), fold_div=st.integers(2, 9), seed=st.integers(0, 2**16),
)
def test_shift_equals_roll_reference_property(mode, clips, n_segment, channels, fold_div, seed):
    assume(channels >= fold_div)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(clips * n_segment, channels, 2, 2, generator=generator)
    assert torch.equal(temporal_shift(x, n_segment, fold_div, mode),
                       roll_shift(x, n_segment, fold_div, mode))


def test_bidirectional_moves_exactly_the_described_channels():
    # frame t holds the value t+1 everywhere: the shifted result is readable by eye
    x = (torch.arange(4.0) + 1).reshape(4, 1, 1, 1).expand(4, 8, 1, 1).contiguous()
    out = temporal_shift(x, 4, fold_div=4, mode="bidirectional")[:, :, 0, 0]
    assert out[:, 0].tolist() == [2, 3, 4, 0]  # channels [0, 2) take the next frame
    assert out[:, 2].tolist() == [0, 1, 2, 3]  # channels [2, 4) take the previous frame
    assert out[:, 4].tolist() == [1, 2, 3, 4]  # the rest stay put
    causal = temporal_shift(x, 4, fold_div=4, mode="causal")[:, :, 0, 0]
    assert causal[:, 1].tolist() == [0, 1, 2, 3] and causal[:, 2].tolist() == [1, 2, 3, 4]


def test_shift_does_not_modify_its_input_and_keeps_dtype():
    x = torch.randn(4, 8, 2, 2, dtype=torch.float64)
    before = x.clone()
    out = temporal_shift(x, 2, 4, "bidirectional")
    assert torch.equal(x, before) and out.dtype == torch.float64


@pytest.mark.parametrize(("channels", "fold_div"), [(16, 8), (13, 4), (5, 5)])
def test_shift_step_sequence_equals_offline_causal(channels, fold_div):
    n_segment, batch = 5, 2
    x = torch.randn(batch * n_segment, channels, 3, 4)
    offline = temporal_shift(x, n_segment, fold_div, "causal").reshape(batch, n_segment, -1, 3, 4)
    frames = x.reshape(batch, n_segment, channels, 3, 4)
    buffer = torch.zeros(batch, channels // fold_div, 3, 4)
    for t in range(n_segment):
        shifted, buffer = shift_step(frames[:, t], buffer, fold_div)
        assert torch.equal(shifted, offline[:, t])


def test_shift_step_buffer_is_a_copy():
    x_t = torch.randn(1, 8, 2, 2)
    _, buffer = shift_step(x_t, torch.zeros(1, 1, 2, 2), 8)
    x_t.zero_()
    assert buffer.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": torch.zeros(4, 8, 2)}, ValueError, r"4-D tensor .* got 3-D"),
        ({"x": [1, 2]}, TypeError, "must be a torch.Tensor"),
        ({"n_segment": 4}, ValueError, r"6 frames .* not a multiple of n_segment=4"),
        ({"n_segment": 0}, ValueError, "n_segment must be an int >= 1"),
        ({"n_segment": 2.0}, TypeError, "n_segment must be an int"),
        ({"fold_div": 16}, ValueError, r"8 channels but fold_div=16, so fold = 8 // 16 = 0"),
        ({"fold_div": 1}, ValueError, "fold_div must be an int >= 2"),
        ({"mode": "forward"}, ValueError, r"mode must be one of \['bidirectional', 'causal'\]"),
    ],
)
def test_shift_rejects_bad_input(kwargs, error, match):
    args = {"x": torch.zeros(6, 8, 2, 2), "n_segment": 2, "fold_div": 4, "mode": "bidirectional"}
    with pytest.raises(error, match=match):
        temporal_shift(**{**args, **kwargs})


def test_shift_step_rejects_bad_buffers():
    with pytest.raises(ValueError, match=r"buffer must have shape .* = \(1, 2, 3, 3\)"):
        shift_step(torch.zeros(1, 8, 3, 3), torch.zeros(1, 2, 4, 4), 4)
    with pytest.raises(ValueError, match="x_t has 2 channels but fold_div=4"):
        shift_step(torch.zeros(1, 2, 3, 3), torch.zeros(1, 0, 3, 3), 4)
    with pytest.raises(ValueError, match=r"x_t must be a 4-D tensor"):
        shift_step(torch.zeros(8, 3, 3), torch.zeros(1, 2, 3, 3), 4)
