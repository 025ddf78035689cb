"""TSM models: registry, config checks, TSN parity (parameters, MACs) and temporal behaviour."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from edgeinfer.video import TSMNet, VideoModelConfig, create_model, list_models
from tests.video.reference import calibrate

SMALL = {"width": 0.25, "n_segment": 4, "num_classes": 7}
FAST = ["tsm_mobilenetv2", "tsm_resnet18"]


def _macs(model: torch.nn.Module, clip: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(clip)
    return counter.get_total_flops()


def test_list_models_names_every_backbone():
    assert list_models() == ["tsm_mobilenetv2", "tsm_resnet18", "tsm_resnet50"]


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("shift", ["bidirectional", "causal", "none"])
def test_every_model_maps_clips_to_logits(name, shift):
    torch.manual_seed(0)
    model = create_model(name, shift=shift, **SMALL).eval()
    clip = torch.randn(2 * 4, 3, 32, 32)
    with torch.no_grad():
        frames = model.forward_frames(clip)
        logits = model(clip)
    assert frames.shape == (2, 4, 7) and logits.shape == (2, 7)
    assert torch.allclose(logits, frames.mean(dim=1))
    assert model.config.shift == shift and isinstance(model, TSMNet)


def test_default_shift_is_bidirectional_and_names_pick_the_backbone():
    model = create_model("tsm_resnet18", num_classes=3, width=0.125)
    assert model.config == VideoModelConfig("resnet18", 3, width=0.125)
    assert model.num_shift_sites == 8  # every BasicBlock
    assert create_model("tsm_resnet50", num_classes=3, width=0.125).num_shift_sites == 16


def test_mobilenetv2_shifts_only_blocks_with_identity():
    model = create_model("tsm_mobilenetv2", num_classes=3)
    blocks = model.backbone.blocks
    assert len(blocks) == 17 and model.num_shift_sites == 10  # 17 blocks, 10 with a skip
    assert all(b.shift_site == (b.stride == 1 and b.in_channels == b.branch[-1][0].out_channels)
               for b in blocks)


@pytest.mark.parametrize("name", list_models())
def test_tsn_has_the_same_parameters_and_macs_as_tsm(name):
    clip = torch.randn(4, 3, 32, 32)
    counts, macs = set(), set()
    for shift in ("bidirectional", "causal", "none"):
        model = create_model(name, shift=shift, **SMALL).eval()
        counts.add(sum(p.numel() for p in model.parameters()))
        macs.add(_macs(model, clip))
    assert len(counts) == 1 and len(macs) == 1


def test_weights_load_across_shift_modes():
    tsm = create_model("tsm_mobilenetv2", shift="bidirectional", **SMALL)
    online = create_model("tsm_mobilenetv2", shift="causal", **SMALL)
    online.load_state_dict(tsm.state_dict())


@pytest.mark.parametrize("name", FAST)
def test_tsn_frame_outputs_follow_frame_order_but_tsm_mixes_time(name):
    torch.manual_seed(0)
    clip = torch.randn(4, 3, 32, 32)
    order = torch.tensor([2, 0, 3, 1])
    outputs = {}
    for shift in ("none", "bidirectional", "causal"):
        model = calibrate(create_model(name, shift=shift, **SMALL), clip)
        with torch.no_grad():
            outputs[shift] = model.forward_frames(clip)[0], model.forward_frames(clip[order])[0]
    plain, shuffled = outputs["none"]
    assert torch.allclose(shuffled, plain[order], atol=1e-5, rtol=1e-5)
    for shift in ("bidirectional", "causal"):
        plain, shuffled = outputs[shift]
        assert (shuffled - plain[order]).abs().max() > 1e-2, shift


def test_causal_frame_outputs_ignore_future_frames():
    torch.manual_seed(0)
    clip = torch.randn(4, 3, 32, 32)
    model = calibrate(create_model("tsm_resnet18", shift="causal", **SMALL), clip)
    changed = clip.clone()
    changed[3] = torch.randn(3, 32, 32)
    with torch.no_grad():
        before, after = model.forward_frames(clip), model.forward_frames(changed)
    assert torch.equal(before[:, :3], after[:, :3]) and not torch.equal(before[:, 3], after[:, 3])


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match=(r"unknown video model 'tsm_resnet'; did you mean "
                                          r"'tsm_resnet50' or 'tsm_resnet18'")):
        create_model("tsm_resnet", num_classes=3)
    with pytest.raises(ValueError, match=r"'mobilenet'; did you mean 'tsm_mobilenetv2'\?"):
        create_model("mobilenet", num_classes=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_classes": 3, "depth": 18}, TypeError, r"unknown keyword\(s\) \['depth'\]"),
        ({"num_classes": 3, "arch": "resnet50"}, TypeError, r"unknown keyword\(s\) \['arch'\]"),
        ({}, TypeError, "needs num_classes"),
        ({"num_classes": 0}, ValueError, "num_classes must be >= 1; got 0"),
        ({"num_classes": 3, "shift": "left"}, ValueError, r"shift must be one of .*'none'"),
        ({"num_classes": 3, "n_segment": 2.5}, TypeError, "n_segment must be an int"),
        ({"num_classes": 3, "fold_div": 1}, ValueError, "fold_div must be >= 2 with shift="),
        ({"num_classes": 3, "width": -1.0}, ValueError, "width must be > 0"),
        ({"num_classes": 3, "dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
        ({"num_classes": 3, "width": 0.05, "fold_div": 16}, ValueError, r"block \d+ .* fold"),
    ],
)
def test_create_model_rejects_bad_config(kwargs, error, match):
    with pytest.raises(error, match=match):
        create_model("tsm_mobilenetv2", **kwargs)


def test_config_rejects_unknown_arch_and_is_frozen():
    with pytest.raises(ValueError, match=r"arch must be one of \['mobilenetv2'"):
        VideoModelConfig("vgg16", 3)
    config = VideoModelConfig("resnet18", 3)
    with pytest.raises(AttributeError):
        config.width = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError, match="config must be a VideoModelConfig"):
        TSMNet({"arch": "resnet18"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("clip", "error", "match"),
    [
        (torch.zeros(6, 3, 16, 16), ValueError, r"6 frames, not a multiple of n_segment=4"),
        (torch.zeros(4, 1, 16, 16), ValueError, r"3 colour channels; got \(4, 1, 16, 16\)"),
        (torch.zeros(4, 3, 16), ValueError, r"shape \(N\*T, 3, H, W\)"),
        (torch.zeros(4, 3, 16, 16, dtype=torch.uint8), TypeError, "floating tensor"),
    ],
)
def test_forward_rejects_bad_clips(clip, error, match):
    model = create_model("tsm_mobilenetv2", **SMALL).eval()
    with pytest.raises(error, match=match):
        model(clip)
