"""Official temporal-shift-module checkpoints imported into TSMNet, checked against a reference
forward written here from the official definitions (archs/mobilenet_v2.py, ops/temporal_shift.py,
online_demo/mobilenet_v2_tsm.py), fed state dicts with the official key names and shapes."""

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from edgeinfer.video import StreamingRunner, export, load_pretrained
from edgeinfer.video.importers import IMAGENET_MEAN, IMAGENET_STD

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
# (expansion t, channels c, repeats n, first stride s), the official interverted_residual_setting
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip
ATOL = 1e-4  # room for float32 reorderings through 19 layers (measured 0.0: the same ops in order)


def _blocks():
    inp = 32
    for t, c, n, s in SETTINGS:
        for i in range(n):
            yield inp, c, s if i == 0 else 1, t
            inp = c


def _bn(state, name, channels, gen):
    state[f"{name}.weight"] = torch.rand(channels, generator=gen) + 0.5
    state[f"{name}.bias"] = torch.randn(channels, generator=gen) * 0.1
    state[f"{name}.running_mean"] = torch.randn(channels, generator=gen) * 0.1
    state[f"{name}.running_var"] = torch.rand(channels, generator=gen) + 0.5
    state[f"{name}.num_batches_tracked"] = torch.tensor(100)


def _conv(state, name, shape, gen):
    fan_in = shape[1] * shape[2] * shape[3]
    state[name] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5


def official_mobilenet_v2(classes, *, shifted, prefix="", seed=0):
    """A state dict with the official MobileNetV2 names (``features.N.conv.M``; ``.net`` on the
    first conv of residual blocks when ``shifted``) and shapes, random values."""
    gen, state = torch.Generator().manual_seed(seed), {}
    _conv(state, "features.0.0.weight", (32, 3, 3, 3), gen)
    _bn(state, "features.0.1", 32, gen)
    for index, (inp, oup, stride, t) in enumerate(_blocks(), start=1):
        hidden, res = inp * t, stride == 1 and inp == oup
        first = f"features.{index}.conv.0" + (".net" if shifted and res else "")
        if t == 1:
            _conv(state, f"{first}.weight", (hidden, 1, 3, 3), gen)
            _bn(state, f"features.{index}.conv.1", hidden, gen)
            _conv(state, f"features.{index}.conv.3.weight", (oup, hidden, 1, 1), gen)
            _bn(state, f"features.{index}.conv.4", oup, gen)
        else:
            _conv(state, f"{first}.weight", (hidden, inp, 1, 1), gen)
            _bn(state, f"features.{index}.conv.1", hidden, gen)
            _conv(state, f"features.{index}.conv.3.weight", (hidden, 1, 3, 3), gen)
            _bn(state, f"features.{index}.conv.4", hidden, gen)
            _conv(state, f"features.{index}.conv.6.weight", (oup, hidden, 1, 1), gen)
            _bn(state, f"features.{index}.conv.7", oup, gen)
    _conv(state, "features.18.0.weight", (1280, 320, 1, 1), gen)
    _bn(state, "features.18.1", 1280, gen)
    state["classifier.weight"] = torch.randn(classes, 1280, generator=gen) * 0.05
    state["classifier.bias"] = torch.randn(classes, generator=gen) * 0.05
    return {prefix + k: v for k, v in state.items()}


def _conv_bn(x, state, conv, bn, stride=1, groups=1, act=True):
    weight = state[conv]
    x = F.conv2d(x, weight, None, stride, weight.shape[-1] // 2, 1, groups)
    x = F.batch_norm(x, state[f"{bn}.running_mean"], state[f"{bn}.running_var"],
                     state[f"{bn}.weight"], state[f"{bn}.bias"], False, 0.0, 1e-5)  # fmt: skip
    return F.relu6(x) if act else x


def official_shift(x, n_segment, fold_div=8):
    """ops/temporal_shift.py TemporalShift.shift: [0, fold) from t+1, [fold, 2 fold) from t-1."""
    nt, c, h, w = x.shape
    x = x.view(nt // n_segment, n_segment, c, h, w)
    fold, out = c // fold_div, torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)


def reference_forward(state, frames, shift):
    """The official MobileNetV2 (TSM) on ``[0, 1]`` frames after ImageNet normalisation.

    ``shift(index, x)`` returns the residual branch's input of block ``index``."""
    mean, std = (
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    )
    x = _conv_bn((frames - mean) / std, state, "features.0.0.weight", "features.0.1", stride=2)
    for index, (inp, oup, stride, t) in enumerate(_blocks(), start=1):
        res, name = stride == 1 and inp == oup, f"features.{index}.conv"
        first = f"{name}.0.net.weight" if f"{name}.0.net.weight" in state else f"{name}.0.weight"
        y = shift(index, x) if res else x
        if t == 1:
            y = _conv_bn(y, state, first, f"{name}.1", stride, groups=inp)
            y = _conv_bn(y, state, f"{name}.3.weight", f"{name}.4", act=False)
        else:
            y = _conv_bn(y, state, first, f"{name}.1")
            y = _conv_bn(y, state, f"{name}.3.weight", f"{name}.4", stride, groups=inp * t)
            y = _conv_bn(y, state, f"{name}.6.weight", f"{name}.7", act=False)
        x = x + y if res else y
    x = _conv_bn(x, state, "features.18.0.weight", "features.18.1")
    return F.linear(x.mean(3).mean(2), state["classifier.weight"], state["classifier.bias"])


def _clip(frames=8, side=32, seed=5):
    return torch.rand(frames, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _official_file(
    tmp_path,
    *,
    shifted=True,
    head="new_fc",
    name="TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100.pth",
):
    state = official_mobilenet_v2(7, shifted=shifted)
    renamed = {
        f"module.base_model.{k}": v for k, v in state.items() if not k.startswith("classifier")
    }
    renamed[
        f"module.{head}.weight" if head == "new_fc" else "module.base_model.classifier.weight"
    ] = state["classifier.weight"]
    renamed[f"module.{head}.bias" if head == "new_fc" else "module.base_model.classifier.bias"] = (
        state["classifier.bias"]
    )
    path = tmp_path / name
    torch.save(
        {"epoch": 100, "arch": "mobilenetv2", "state_dict": renamed, "best_prec1": 0.0}, path
    )
    return path, state


@pytest.mark.parametrize("head", ["new_fc", "classifier"])
def test_official_offline_mobilenet_v2_matches_the_reference(tmp_path, head):
    path, state = _official_file(tmp_path, head=head)
    model, info = load_pretrained(path)
    assert info.format == "tsm" and info.model == "tsm_mobilenetv2" and len(info.class_names) == 7
    assert model.config.shift == "bidirectional" and model.config.n_segment == 8
    assert info.input.mean == IMAGENET_MEAN and info.input.std == IMAGENET_STD
    clip = _clip()
    with torch.no_grad():
        expected = reference_forward(state, clip, lambda i, x: official_shift(x, 8)).mean(0)
        torch.testing.assert_close(model(clip)[0], expected, atol=ATOL, rtol=0)
        # without the shift (or the normalisation) the reference differs: the test can fail
        assert not torch.allclose(reference_forward(state, clip, lambda i, x: x).mean(0),
                                  expected, atol=ATOL)  # fmt: skip


def test_a_wrong_permutation_or_a_missing_key_fails(tmp_path):
    path, state = _official_file(tmp_path)
    payload = torch.load(path, weights_only=True)
    w = payload["state_dict"]["module.base_model.features.2.conv.3.weight"]
    payload["state_dict"]["module.base_model.features.2.conv.3.weight"] = w.flip(0)
    torch.save(payload, path)
    model, _ = load_pretrained(path)
    clip = _clip()
    with torch.no_grad():
        expected = reference_forward(state, clip, lambda i, x: official_shift(x, 8)).mean(0)
        assert not torch.allclose(model(clip)[0], expected, atol=ATOL)
    payload["state_dict"].pop("module.base_model.features.5.conv.4.running_var")
    torch.save(payload, path)
    with pytest.raises(
        ValueError, match=r"missing official keys \['features\.5\.conv\.4\.running_var'\]"
    ):
        load_pretrained(path)


def test_online_demo_state_dict_streams_like_the_reference(tmp_path):
    state = official_mobilenet_v2(5, shifted=False, seed=2)
    torch.save(state, tmp_path / "mobilenetv2_jester_online.pth.tar")
    model, info = load_pretrained(tmp_path / "mobilenetv2_jester_online.pth.tar")
    assert info.format == "tsm-online" and model.config.shift == "causal"
    frames, buffers = _clip(6, 32, seed=9), {}

    def causal(
        index, x
    ):  # online_demo: cat((shift_buffer, x[:, c // 8:])), buffer <- x[:, :c // 8]
        fold = x.shape[1] // 8
        previous = buffers.get(index, torch.zeros_like(x[:, :fold]))
        buffers[index] = x[:, :fold]
        return torch.cat((previous, x[:, fold:]), dim=1)

    runner = StreamingRunner(model)
    with torch.no_grad():
        for t in range(len(frames)):
            expected = reference_forward(state, frames[t : t + 1], causal)
            torch.testing.assert_close(runner.step(frames[t]), expected, atol=ATOL, rtol=0)


def test_imported_model_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from edgeinfer.video import OnnxStreamingRunner

    state = official_mobilenet_v2(5, shifted=False, seed=2)
    torch.save(state, tmp_path / "online.pth")
    model, _ = load_pretrained(tmp_path / "online.pth")
    onnx_path = export(model, "onnx", tmp_path / "online.onnx", height=32, width=32)
    eager, exported, frames = StreamingRunner(model), OnnxStreamingRunner(onnx_path), _clip(3, 32)
    with torch.no_grad():
        for frame in frames:
            torch.testing.assert_close(torch.as_tensor(exported.step(frame)), eager.step(frame),
                                       atol=ATOL, rtol=0)  # fmt: skip


@pytest.mark.slow  # lowering to XNNPACK takes ~30 s per model here
def test_imported_model_exports_to_executorch(tmp_path):
    pytest.importorskip("executorch", reason="executorch is not installed (optional)")
    from edgeinfer.video import ExecuTorchStreamingRunner

    state = official_mobilenet_v2(5, shifted=False, seed=2)
    torch.save(state, tmp_path / "online.pth")
    model, _ = load_pretrained(tmp_path / "online.pth")
    path = export(model, "executorch", tmp_path / "online.pte", height=32, width=32)
    eager, exported = StreamingRunner(model), ExecuTorchStreamingRunner(path, num_threads=1)
    with torch.no_grad():
        for frame in _clip(3, 32):
            torch.testing.assert_close(torch.as_tensor(exported.step(frame)), eager.step(frame),
                                       atol=1e-3, rtol=1e-3)  # fmt: skip


def test_shift_mode_changes_warn_and_variants_are_refused(tmp_path):
    path, _ = _official_file(tmp_path)
    with pytest.warns(UserWarning, match=r"trained with shift='bidirectional'.*'causal'"):
        model, _ = load_pretrained(path, shift="causal")
    assert model.config.shift == "causal"
    tpool, _ = _official_file(
        tmp_path, name="TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100_tpool.pth"
    )
    with pytest.raises(ValueError, match="temporal-pooling"):
        load_pretrained(tpool)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["module.base_model.features.3.nl.g.weight"] = torch.zeros(1)
    torch.save(payload, tmp_path / "nl.pth")
    with pytest.raises(ValueError, match="non-local"):
        load_pretrained(tmp_path / "nl.pth")


def official_resnet50(classes, *, seed=0):
    """A torchvision ResNet-50 state dict as TSM's main.py saves it (``.net`` on every
    Bottleneck's conv1, ``new_fc`` head, ``module.base_model.`` prefix), random values."""
    gen, state = torch.Generator().manual_seed(seed), {}
    _conv(state, "conv1.weight", (64, 3, 7, 7), gen)
    _bn(state, "bn1", 64, gen)
    inplanes = 64
    for stage, blocks in enumerate([3, 4, 6, 3]):
        planes = 64 * 2**stage
        for index in range(blocks):
            name = f"layer{stage + 1}.{index}"
            _conv(state, f"{name}.conv1.net.weight", (planes, inplanes, 1, 1), gen)
            _bn(state, f"{name}.bn1", planes, gen)
            _conv(state, f"{name}.conv2.weight", (planes, planes, 3, 3), gen)
            _bn(state, f"{name}.bn2", planes, gen)
            _conv(state, f"{name}.conv3.weight", (planes * 4, planes, 1, 1), gen)
            _bn(state, f"{name}.bn3", planes * 4, gen)
            if index == 0:
                _conv(state, f"{name}.downsample.0.weight", (planes * 4, inplanes, 1, 1), gen)
                _bn(state, f"{name}.downsample.1", planes * 4, gen)
            inplanes = planes * 4
    state = {f"module.base_model.{k}": v for k, v in state.items()}
    state["module.new_fc.weight"] = torch.randn(classes, 2048, generator=gen) * 0.02
    state["module.new_fc.bias"] = torch.randn(classes, generator=gen) * 0.02
    return state


def reference_resnet50(state, frames, n_segment):
    """torchvision's ResNet-50 forward (Bottleneck, stride on conv2) with TSM's residual shift
    on each conv1 input, ImageNet normalisation first and the per-frame logits averaged."""
    s = {k.removeprefix("module.base_model."): v for k, v in state.items()}
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = _conv_bn((frames - mean) / std, s, "conv1.weight", "bn1", stride=2, act=False).relu()
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, blocks in enumerate([3, 4, 6, 3]):
        for index in range(blocks):
            name, stride = f"layer{stage + 1}.{index}", 2 if stage > 0 and index == 0 else 1
            y = official_shift(x, n_segment)
            y = _conv_bn(y, s, f"{name}.conv1.net.weight", f"{name}.bn1", act=False).relu()
            y = _conv_bn(y, s, f"{name}.conv2.weight", f"{name}.bn2", stride, act=False).relu()
            y = _conv_bn(y, s, f"{name}.conv3.weight", f"{name}.bn3", act=False)
            identity = x
            if f"{name}.downsample.0.weight" in s:
                identity = _conv_bn(x, s, f"{name}.downsample.0.weight", f"{name}.downsample.1",
                                    stride, act=False)  # fmt: skip
            x = (y + identity).relu()
    logits = F.linear(
        x.mean(dim=(2, 3)), state["module.new_fc.weight"], state["module.new_fc.bias"]
    )
    return logits.view(-1, n_segment, logits.shape[-1]).mean(1)


def test_official_resnet50_tsm_matches_the_reference(tmp_path):
    state = official_resnet50(4)
    path = tmp_path / "TSM_something_RGB_resnet50_shift8_blockres_avg_segment4_e45.pth"
    torch.save({"epoch": 45, "arch": "resnet50", "state_dict": state}, path)
    model, info = load_pretrained(path)
    assert info.model == "tsm_resnet50" and model.config.n_segment == 4
    clip = _clip(4, 32, seed=3)
    with torch.no_grad():
        expected = reference_resnet50(state, clip, 4)
        torch.testing.assert_close(model(clip), expected, atol=ATOL, rtol=0)
