"""Online TSM: frame-by-frame streaming equals the offline causal model, per frame."""

import pytest
import torch

from edgeinfer.video import StreamingRunner, create_model, stream_step
from tests.video.reference import calibrate
from tests.video.tolerances import STREAM_ATOL, STREAM_RTOL

SMALL = {"width": 0.25, "num_classes": 5}


def _causal(name: str, n_segment: int, clip: torch.Tensor, shift: str = "causal"):
    torch.manual_seed(0)
    return calibrate(create_model(name, n_segment=n_segment, shift=shift, **SMALL), clip)


def _stream(runner: StreamingRunner, frames: torch.Tensor) -> torch.Tensor:
    # frames (T, B, 3, H, W) -> per-frame logits (B, T, K)
    return torch.stack([runner.step(frame) for frame in frames], dim=1)


@pytest.mark.parametrize("name", ["tsm_mobilenetv2", "tsm_resnet18"])
@pytest.mark.parametrize("shift", ["causal", "none"])
def test_streaming_equals_offline_per_frame(name, shift):
    n_segment = 6
    clip = torch.randn(n_segment, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    model = _causal(name, n_segment, clip, shift)
    with torch.no_grad():
        offline = model.forward_frames(clip)[0]  # (T, K)
    runner = StreamingRunner(model)
    for t in range(n_segment):
        online = runner.step(clip[t : t + 1])
        assert online.shape == (1, 5)
        torch.testing.assert_close(online[0], offline[t], atol=STREAM_ATOL, rtol=STREAM_RTOL)
    assert runner.frames_seen == n_segment
    assert offline.abs().max() > 0.1  # calibrated: the comparison is not between tiny numbers


@pytest.mark.parametrize("name", ["tsm_mobilenetv2", "tsm_resnet18"])
def test_streaming_equals_offline_exactly_in_float64(name):
    clip = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    model = _causal(name, 4, clip.float()).double()
    with torch.no_grad():
        offline = model.forward_frames(clip)[0]
    online = _stream(StreamingRunner(model), clip.unsqueeze(1))[0]
    torch.testing.assert_close(online, offline, atol=1e-12, rtol=1e-12)


def test_streaming_batches_odd_sizes_and_unbatched_frames():
    clip = torch.randn(2 * 3, 3, 45, 37)
    model = _causal("tsm_resnet18", 3, clip)
    with torch.no_grad():
        offline = model.forward_frames(clip)  # (2, 3, K)
    frames = clip.reshape(2, 3, 3, 45, 37).transpose(0, 1)  # (T, B, 3, H, W)
    online = _stream(StreamingRunner(model), frames)
    torch.testing.assert_close(online, offline, atol=STREAM_ATOL, rtol=STREAM_RTOL)
    single = _stream(StreamingRunner(model), frames[:, 1].unsqueeze(1))
    unbatched = torch.stack([StreamingRunner(model).step(clip[3])], dim=1)
    torch.testing.assert_close(single, offline[1:], atol=STREAM_ATOL, rtol=STREAM_RTOL)
    torch.testing.assert_close(unbatched[0], offline[1, :1], atol=STREAM_ATOL, rtol=STREAM_RTOL)


def test_stream_length_is_not_bound_to_n_segment_and_reset_restarts():
    clip = torch.randn(7, 3, 32, 32)
    model = _causal("tsm_mobilenetv2", 7, clip)
    short = create_model("tsm_mobilenetv2", n_segment=1, shift="causal", **SMALL)
    short.load_state_dict(model.state_dict())
    runner = StreamingRunner(short.eval())
    with torch.no_grad():
        offline = model.forward_frames(clip)
    first = _stream(runner, clip.unsqueeze(1))
    torch.testing.assert_close(first, offline, atol=STREAM_ATOL, rtol=STREAM_RTOL)
    runner.reset()
    assert runner.frames_seen == 0
    torch.testing.assert_close(_stream(runner, clip.unsqueeze(1)), first, atol=0, rtol=0)


def test_step_with_explicit_buffers_matches_init_buffer_shapes():
    model = create_model("tsm_mobilenetv2", n_segment=2, shift="causal", **SMALL).eval()
    buffers = model.init_buffers(batch=2, height=50, width=30)
    assert len(buffers) == model.num_shift_sites
    with torch.no_grad():
        logits, new = model.step(torch.randn(2, 3, 50, 30), buffers)
    assert logits.shape == (2, 5)
    assert [b.shape for b in new] == [b.shape for b in buffers]
    assert create_model("tsm_resnet18", shift="none", **SMALL).init_buffers() == ()


def test_runner_rejects_bidirectional_and_training_models():
    with pytest.raises(ValueError, match=r"shift='causal'.*'bidirectional'.*needs each frame's"):
        StreamingRunner(create_model("tsm_resnet18", **SMALL).eval())
    with pytest.raises(ValueError, match=r"training mode; call model.eval\(\)"):
        StreamingRunner(create_model("tsm_resnet18", shift="causal", **SMALL))
    with pytest.raises(TypeError, match="model must be a TSMNet"):
        StreamingRunner(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot stream"):
        create_model("tsm_resnet18", **SMALL).init_buffers()


def test_runner_rejects_a_frame_size_change_mid_stream():
    runner = StreamingRunner(create_model("tsm_mobilenetv2", shift="causal", **SMALL).eval())
    runner.step(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"expected \(1, 3, 32, 32\).*got \(1, 3, 32, 48\)"):
        runner.step(torch.randn(1, 3, 32, 48))
    with pytest.raises(TypeError, match="floating tensor"):
        StreamingRunner(runner.model).step(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    runner.reset()
    assert runner.step(torch.randn(3, 32, 48)).shape == (1, 5)


def test_step_rejects_mismatched_buffers():
    model = create_model("tsm_resnet18", shift="causal", **SMALL).eval()
    buffers = model.init_buffers(1, 32, 32)
    with pytest.raises(ValueError, match=r"tuple of 8 tensors .* got 7"):
        model.step(torch.randn(1, 3, 32, 32), buffers[:-1])
    with pytest.raises(ValueError, match=r"buffers\[0\] must have shape \(1, 2, 12, 12\)"):
        model.step(torch.randn(1, 3, 48, 48), buffers)


def test_online_step_exports_with_buffers_as_graph_inputs_and_outputs():
    model = create_model("tsm_mobilenetv2", n_segment=1, shift="causal", **SMALL).eval()

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, frame, *buffers):
            logits, new = self.model.step(frame, buffers)
            return (logits, *new)

    buffers = model.init_buffers(1, 32, 32)
    frame = torch.randn(1, 3, 32, 32)
    program = torch.export.export(Step(), (frame, *buffers))
    ops = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not {op for op in ops if "index_put" in op or "scatter" in op or "copy_" in op}
    exported = program.module()(frame, *buffers)
    with torch.no_grad():
        logits, new = model.step(frame, buffers)
    assert len(exported) == 1 + len(buffers)
    for got, want in zip(exported, (logits, *new), strict=True):
        torch.testing.assert_close(got, want, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["tsm_mobilenetv2", "tsm_resnet18"])
def test_in_place_shift_equals_the_cat_shift_exactly_and_keeps_the_inputs(name):
    clip = torch.randn(5, 3, 40, 40, generator=torch.Generator().manual_seed(4))
    model = _causal(name, 5, clip)
    backbone, head, fold_div = model.backbone, model.head, model.config.fold_div
    cat_buffers = swap_buffers = model.init_buffers(1, 40, 40)
    with torch.inference_mode():
        for frame in clip:
            frame = frame[None]
            kept = [buffer.clone() for buffer in swap_buffers]
            want, cat_buffers = stream_step(backbone, head, frame, cat_buffers, fold_div=fold_div)
            got, new = stream_step(backbone, head, frame, swap_buffers, fold_div=fold_div,
                                   in_place=True)
            assert torch.equal(got, want)
            assert all(torch.equal(a, b) for a, b in zip(new, cat_buffers, strict=True))
            assert all(torch.equal(a, b) for a, b in zip(swap_buffers, kept, strict=True))
            swap_buffers = new
        assert torch.equal(model.step(frame, swap_buffers)[0],  # in place under inference mode
                           stream_step(backbone, head, frame, swap_buffers, fold_div=fold_div)[0])


def test_step_with_autograd_uses_the_differentiable_shift():
    model = _causal("tsm_resnet18", 2, torch.randn(2, 3, 32, 32))
    frame = torch.randn(1, 3, 32, 32, requires_grad=True)
    logits, buffers = model.step(frame, model.init_buffers(1, 32, 32))
    logits, _ = model.step(frame * 2, buffers)  # an in-place shift would break backward
    logits.sum().backward()
    assert frame.grad is not None and frame.grad.abs().sum() > 0
