"""Changed-pixel updates: threshold 0 equals the dense streaming model, per frame."""

import pytest
import torch
from torch.nn import functional

from edgeinfer.video import StreamingRunner, create_model
from edgeinfer.video.delta import DeltaConfig, DeltaRunner, delta_prefix, max_delta_stages
from edgeinfer.video.delta_box import Box, change_box, conv_box, out_box, update_box
from edgeinfer.video.delta_conv import FoldedConv, Grid, conv_delta
from tests.video.reference import calibrate

DELTA_RTOL = 1e-4  # relative to the largest logit: float error accumulates in the caches
SIZE = 64


def _model(name="tsm_mobilenetv2", shift="causal", width=0.5):
    torch.manual_seed(0)
    clip = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    return calibrate(create_model(name, num_classes=5, n_segment=4, shift=shift, width=width), clip)


def _frames(count, batch=1, seed=2):
    # a static scene with a moving patch, one frame of sensor noise everywhere, one still frame
    generator = torch.Generator().manual_seed(seed)
    frame = torch.rand(batch, 3, SIZE, SIZE, generator=generator)
    frames = [frame]
    for t in range(1, count):
        frame = frame.clone()
        if t == 3:
            frame += 0.01 * torch.randn(frame.shape, generator=generator)
        elif t != 5:
            y, x = 4 + 3 * t, 2 + 4 * t
            frame[:, :, y : y + 9, x : x + 13] = torch.rand(batch, 3, 9, 13, generator=generator)
        frames.append(frame)
    return frames


def _assert_close_logits(actual, expected):
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=DELTA_RTOL, atol=DELTA_RTOL * scale)


@pytest.mark.parametrize(
    ("name", "shift", "width", "method"),
    [
        ("tsm_mobilenetv2", "causal", 0.5, "box"),
        ("tsm_mobilenetv2", "causal", 0.5, "im2col"),
        ("tsm_mobilenetv2", "causal", 0.5, "kernel_map"),
        ("tsm_mobilenetv2", "none", 0.5, "im2col"),
        ("tsm_resnet18", "causal", 0.25, "kernel_map"),
        ("tsm_resnet18", "causal", 0.25, "box"),
    ],
)
def test_threshold_zero_equals_dense_stream(name, shift, width, method):
    model = _model(name, shift, width)
    dense, delta = StreamingRunner(model), DeltaRunner(model, DeltaConfig(method=method))
    for frame in _frames(8):
        _assert_close_logits(delta.step(frame), dense.step(frame))
    stats = delta.last_stats
    assert not stats.dense and stats.changed_fraction > 0
    assert len(stats.active_sites) == len(delta.prefix.layers) == len(stats.total_sites)


@pytest.mark.parametrize("method", ["box", "im2col"])
@pytest.mark.parametrize("dense_above", [0.0, 1.0])
def test_dense_fallback_and_all_sparse_are_exact(dense_above, method):
    model = _model()
    dense = StreamingRunner(model)
    delta = DeltaRunner(model, DeltaConfig(dense_above=dense_above, method=method))
    for frame in _frames(5, batch=2):
        _assert_close_logits(delta.step(frame), dense.step(frame))
    expected = len(delta.prefix.layers) if dense_above == 0.0 else 0
    assert delta.last_stats.dense_layers == expected


@pytest.mark.parametrize("method", ["box", "im2col"])
def test_threshold_keeps_reference_within_threshold_and_equals_dense_on_it(method):
    model, threshold = _model(), 0.05
    delta = DeltaRunner(model, DeltaConfig(threshold=threshold, method=method))
    dense = StreamingRunner(model)
    for t, frame in enumerate(_frames(7)):
        drifted = frame + 0.03 * t  # a slow global drift: skipped until it passes threshold
        logits = delta.step(drifted)
        reference = delta.reference
        assert float((reference - drifted).abs().max()) <= threshold + 1e-6
        _assert_close_logits(logits, dense.step(reference))


@pytest.mark.parametrize("threshold", [0.0, 0.05])
def test_frames_from_hwc_arrays_give_the_same_stream(threshold):
    # frames as numpy HWC images arrive channels-last, where the change score takes another
    # path (a max-pool over each pixel's channels): same changes, same logits as NCHW frames
    model = _model()
    runners = [DeltaRunner(model, DeltaConfig(threshold=threshold)) for _ in range(2)]
    for t, frame in enumerate(_frames(7)):
        drifted = frame + 0.03 * t
        hwc = drifted.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        assert hwc.is_contiguous(memory_format=torch.channels_last)
        logits = [runner.step(x) for runner, x in zip(runners, (drifted, hwc), strict=True)]
        stats = [runner.last_stats for runner in runners]
        assert stats[0].changed_fraction == stats[1].changed_fraction
        assert stats[0].active_sites == stats[1].active_sites
        torch.testing.assert_close(logits[1], logits[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(runners[1].reference, runners[0].reference, rtol=0, atol=0)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
@pytest.mark.parametrize("channels_last", [False, True])
def test_corrupt_frame_is_reported_and_the_stream_goes_on(bad_value, channels_last):
    model = _model()
    clean, hit = DeltaRunner(model), DeltaRunner(model)
    frames = _frames(5)
    if channels_last:  # the change score takes the max-pool path on these
        frames = [f.contiguous(memory_format=torch.channels_last) for f in frames]
    corrupt = frames[0].clone()
    corrupt[0, 1, 5, 7] = bad_value
    with pytest.raises(ValueError, match=r"frame 0 has non-finite values .* at 1 pixels"):
        hit.step(corrupt)  # on frame 0 (the dense path)
    for t, frame in enumerate(frames):
        if t == 2:
            corrupt = frame.clone()
            corrupt[0, :, 3:5, 9] = bad_value
            with pytest.raises(ValueError, match=r"frame 2 has non-finite .* at 2 pixels"):
                hit.step(corrupt)  # mid-stream (the sparse path): nothing changes
        torch.testing.assert_close(hit.step(frame), clean.step(frame), rtol=0, atol=0)
        assert hit.frames_seen == clean.frames_seen


@pytest.mark.parametrize("shift", ["none", "causal"])
def test_refresh_every_recomputes_densely(shift):
    model = _model(shift=shift)
    delta = DeltaRunner(model, DeltaConfig(threshold=0.2, refresh_every=3))
    on_frames, on_reference = StreamingRunner(model), StreamingRunner(model)
    for t, frame in enumerate(_frames(7)):
        logits, expected = delta.step(frame), on_frames.step(frame)
        assert delta.last_stats.dense == (t % 3 == 0)
        # the causal shift carries features of earlier (approximated) frames: compare with the
        # dense stream of the reference images; a TSN refresh frame equals the dense frame
        _assert_close_logits(logits, on_reference.step(delta.reference))
        if t % 3 == 0:
            torch.testing.assert_close(delta.reference, frame)
            if shift == "none":
                torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["box", "im2col"])
def test_stats_and_unchanged_frame(method):
    model = _model()
    delta = DeltaRunner(model, DeltaConfig(method=method))
    frame = torch.rand(1, 3, SIZE, SIZE)
    delta.step(frame)
    assert delta.last_stats.dense and delta.last_stats.changed_fraction == 1.0
    moved = frame.clone()
    moved[0, :, 10:14, 20:30] += 1.0  # 40 pixels
    delta.step(moved)
    stats = delta.last_stats
    assert stats.changed_fraction == pytest.approx(40 / SIZE**2)
    assert 0 < stats.active_sites[0] < stats.total_sites[0]
    assert stats.layer_names[0] == "stem" and all(0 < f < 1 for f in stats.active_fraction)
    delta.step(moved)
    assert delta.last_stats.changed_fraction == 0 and sum(delta.last_stats.active_sites) == 0


@pytest.mark.parametrize(
    ("kernel", "stride", "groups", "c_in", "c_out"),
    [(3, 2, 1, 3, 8), (3, 1, 6, 6, 6), (3, 2, 6, 6, 6), (7, 2, 1, 3, 4), (1, 1, 1, 5, 7)],
)
@pytest.mark.parametrize("method", ["im2col", "kernel_map"])
def test_conv_delta_equals_dense_conv_of_delta_image(kernel, stride, groups, c_in, c_out, method):
    generator = torch.Generator().manual_seed(kernel * 10 + stride + groups)
    weight = torch.randn(c_out, c_in // groups, kernel, kernel, generator=generator).double()
    layer = FoldedConv(weight, torch.zeros(c_out, dtype=torch.float64), stride, groups, "none")
    batch, height, width = 2, 13, 11
    mask = torch.rand(batch, height, width, generator=generator) < 0.15
    mask[1, 0, 0] = mask[0, -1, -1] = True  # corners: the padding
    image = torch.randn(batch, c_in, height, width, generator=generator).double()
    image = image * mask.unsqueeze(1)
    rows = torch.nonzero(mask.reshape(-1)).reshape(-1)
    delta = image.permute(0, 2, 3, 1).reshape(-1, c_in)[rows]
    out_rows, change = conv_delta(layer, delta, rows, Grid(batch, height, width), method)
    expected = functional.conv2d(image, weight, None, stride, kernel // 2, 1, groups)
    flat = expected.permute(0, 2, 3, 1).reshape(-1, c_out)
    scattered = torch.zeros_like(flat).index_copy(0, out_rows, change)
    torch.testing.assert_close(scattered, flat, rtol=1e-12, atol=1e-12)
    assert torch.equal(out_rows, torch.unique(out_rows))


def test_prefix_limits_and_errors():
    model = _model()
    limit = max_delta_stages(model.backbone)
    assert limit == 3  # stem, block 0 (32 -> 16), block 1 (stride 2); block 2 is a shift site
    assert len(delta_prefix(model.backbone, 1).layers) == 1
    with pytest.raises(ValueError, match=r"stages must be in \[1, 3\]"):
        DeltaRunner(model, DeltaConfig(stages=4))
    with pytest.raises(ValueError, match="bidirectional"):
        DeltaRunner(_model(shift="bidirectional"))
    with pytest.raises(TypeError, match="TSMNet"):
        DeltaRunner(torch.nn.Linear(2, 2))
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        DeltaRunner(model)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"threshold": -1.0}, ValueError, "threshold"),
        ({"threshold": "0"}, TypeError, "threshold"),
        ({"stages": 0}, ValueError, "stages"),
        ({"refresh_every": 1.5}, TypeError, "refresh_every"),
        ({"method": "fast"}, ValueError, "method must be one of"),
        ({"dense_above": 2.0}, ValueError, "dense_above"),
    ],
)
def test_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DeltaConfig(**kwargs)


def test_frame_size_change_needs_reset():
    delta = DeltaRunner(_model())
    delta.step(torch.rand(3, SIZE, SIZE))
    with pytest.raises(ValueError, match="size changed mid-stream"):
        delta.step(torch.rand(1, 3, 32, 32))
    delta.reset()
    assert delta.step(torch.rand(1, 3, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize(
    ("kernel", "stride", "groups", "c_in", "c_out"),
    [(3, 2, 1, 3, 8), (3, 1, 6, 6, 6), (3, 2, 6, 6, 6), (7, 2, 1, 3, 4), (1, 1, 1, 5, 7)],
)
@pytest.mark.parametrize(
    "corner", [(4, 9, 3, 7), (0, 13, 0, 11), (0, 2, 9, 11), (12, 13, 0, 1), (5, 6, 5, 6)]
)
def test_conv_box_equals_dense_conv_of_delta_image(kernel, stride, groups, c_in, c_out, corner):
    generator = torch.Generator().manual_seed(kernel * 10 + stride + groups + sum(corner))
    weight = torch.randn(c_out, c_in // groups, kernel, kernel, generator=generator).double()
    layer = FoldedConv(weight, torch.zeros(c_out, dtype=torch.float64), stride, groups, "none")
    height, width = 13, 11
    box = Box(*corner)  # inside the map, touching its borders in some cases
    image = torch.zeros(2, c_in, height, width, dtype=torch.float64)
    patch = torch.randn(2, c_in, box.height, box.width, generator=generator).double()
    image[:, :, box.top : box.bottom, box.left : box.right] = patch
    expected = functional.conv2d(image, weight, None, stride, kernel // 2, 1, groups)
    out = out_box(box, expected.shape[2], expected.shape[3], kernel, stride)
    change = conv_box(layer, patch, box, out)
    placed = torch.zeros_like(expected)
    placed[:, :, out.top : out.bottom, out.left : out.right] = change
    torch.testing.assert_close(placed, expected, rtol=1e-12, atol=1e-12)
    # the box is tight: every output row and column of it is reached by the patch
    reached = functional.conv2d(
        (image != 0).any(dim=1, keepdim=True).double(),
        torch.ones(1, 1, kernel, kernel, dtype=torch.float64), None, stride, kernel // 2,
    )[0, 0] > 0
    assert change_box(reached) == out


def test_change_box_and_update_box_in_place():
    mask = torch.zeros(6, 7, dtype=torch.bool)
    assert change_box(mask) is None
    mask[1, 4] = mask[3, 2] = True
    assert change_box(mask) == Box(1, 4, 2, 5)
    score = torch.rand(6, 7, generator=torch.Generator().manual_seed(3))
    for threshold in (0.0, 0.5, 0.9, 1.0):  # a score map above a threshold: as its mask
        assert change_box(score, threshold) == change_box(score > threshold)
    weight = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    layer = FoldedConv(weight, torch.zeros(4, dtype=torch.float64), 1, 4, "relu6")
    cache = torch.randn(1, 4, 6, 7, dtype=torch.float64)
    before = cache.clone()
    delta = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    box = Box(1, 4, 2, 5)
    out = out_box(box, 6, 7, 3, 1)
    assert out == Box(0, 5, 1, 6)
    change = update_box(layer, cache, delta, box, out)
    image = torch.zeros(1, 4, 6, 7, dtype=torch.float64)
    image[:, :, 1:4, 2:5] = delta
    expected = before + functional.conv2d(image, weight, None, 1, 1, 1, 4)
    torch.testing.assert_close(cache, expected, rtol=1e-12, atol=1e-12)
    full = expected.clamp(0, 6) - before.clamp(0, 6)
    torch.testing.assert_close(change, full[:, :, 0:5, 1:6], rtol=1e-12, atol=1e-12)
    assert torch.count_nonzero(full) == torch.count_nonzero(full[:, :, 0:5, 1:6])


def test_box_method_handles_images_of_a_batch_changing_in_different_places():
    model = _model()
    dense, delta = StreamingRunner(model), DeltaRunner(model, DeltaConfig(method="box"))
    generator = torch.Generator().manual_seed(5)
    frame = torch.rand(3, 3, SIZE, SIZE, generator=generator)
    _assert_close_logits(delta.step(frame), dense.step(frame))
    for t in range(1, 4):
        frame = frame.clone()
        frame[0, :, 2 * t : 2 * t + 6, 40:47] = torch.rand(3, 6, 7, generator=generator)
        frame[2, :, 50:58, 3 * t : 3 * t + 5] = torch.rand(3, 8, 5, generator=generator)
        _assert_close_logits(delta.step(frame), dense.step(frame))  # image 1 never changes
        stats = delta.last_stats
        assert stats.dense_layers == 0 and 0 < stats.active_fraction[0] < 0.1


@pytest.mark.parametrize("method", ["box", "im2col"])
def test_step_prefix_equals_the_dense_early_stages(method):
    model = _model()
    backbone = model.backbone
    delta = DeltaRunner(model, DeltaConfig(method=method))
    first = delta.prefix.first_block
    for frame in _frames(6):
        with torch.no_grad():
            expected = backbone.stem(frame)
            for block in backbone.blocks[:first]:
                expected = block(expected, expected)
        got = delta.step_prefix(frame)
        scale = float(expected.abs().max())
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * scale)
    assert delta.frames_seen == 6 and not delta.last_stats.dense


class _FaultError(RuntimeError):
    pass


@pytest.mark.parametrize("method", ["box", "im2col", "kernel_map"])
@pytest.mark.parametrize("threshold", [0.0, 0.05])
@pytest.mark.parametrize("where", ["rest", "prefix"])
def test_a_fault_mid_step_leaves_the_stream_as_it_was(method, threshold, where, monkeypatch):
    """A network fault (not bad input) inside step: the caches, reference, shift buffers and
    counters are put back, and the stream goes on exactly as an undisturbed one."""
    import edgeinfer.video.delta as delta_module

    model = _model()
    config = DeltaConfig(threshold=threshold, method=method)
    clean, hit = DeltaRunner(model, config), DeltaRunner(model, config)
    frames = _frames(7)
    for t, frame in enumerate(frames):
        if t in (2, 4):  # a sparse frame with a moving patch, then one after the fault
            fail = {"calls": 0}
            if where == "rest":
                block = model.backbone.blocks[-1]
                original = type(block).forward

                def broken(self, *args, _original=original, **kwargs):
                    raise _FaultError("injected")

                monkeypatch.setattr(type(block), "forward", broken)
            else:  # after the first layer's cache changed: a half-done prefix update
                name = "update_box" if method == "box" else "update_layer"
                original = getattr(delta_module, name)

                def broken(*args, _original=original, _fail=fail, **kwargs):
                    _fail["calls"] += 1
                    if _fail["calls"] > 1:
                        raise _FaultError("injected")
                    return _original(*args, **kwargs)

                monkeypatch.setattr(delta_module, name, broken)
            before = (hit.frames_seen, hit.reference, [m.clone() for m in hit._maps])
            with pytest.raises(_FaultError):
                hit.step(frame)
            monkeypatch.undo()
            assert hit.frames_seen == before[0]
            torch.testing.assert_close(hit.reference, before[1], rtol=0, atol=0)
            for now, then in zip(hit._maps, before[2], strict=True):
                torch.testing.assert_close(now, then, rtol=0, atol=0)
            if where == "prefix":
                assert fail["calls"] > 1  # the fault did land mid-prefix
        torch.testing.assert_close(hit.step(frame), clean.step(frame), rtol=0, atol=0)
    assert hit.frames_seen == clean.frames_seen
