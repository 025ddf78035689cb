"""TorchSparse/SPVNAS and spconv MinkUNet imports against reference forwards written here.

The reference is a dense network on a 16^3 grid built from the official definitions, not from
our code: SPVNAS's ``MinkUNet`` layer order (``core/models/semantic_kitti/minkunet.py``), with
TorchSparse's kernel offsets (``get_kernel_offsets``: odd sizes x fastest, even sizes z
fastest) turned into dense ``conv3d`` weights. A sub-manifold conv is the dense conv read on
the active sites; a k2s2 conv the stride-2 dense conv on the coarse sites; its transpose the
dense transposed conv on the fine sites. spconv 2.x weights ``(C_out, kx, ky, kz, C_in)`` are
dense ``conv3d`` weights after ``permute(0, 4, 1, 2, 3)`` (its 1x1x1 conv reads the memory as
``(C_in, C_out)``). State dicts are built here with the official key names and shapes.
"""

from __future__ import annotations

import itertools
import re

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from edgeinfer.pointcloud import PointInput, load_pretrained, save_checkpoint, sparse_collate
from edgeinfer.pointcloud.importers import (
    SEMANTIC_KITTI_CLASSES,
    coords_from_torchsparse,
    load_spconv_weights,
    load_torchsparse_weights,
    spconv_kernel,
    torchsparse_kernel,
)
from edgeinfer.pointcloud.models import MinkUNet, UNetConfig, create_model
from edgeinfer.pointcloud.train import voxelize_scan

GRID = 16
CR_CHANNELS = [int(0.25 * c) for c in (32, 32, 64, 128, 256, 256, 128, 96, 96)]  # SPVNAS cr


# ---- the official definitions, densely ---------------------------------------------------

def torchsparse_offsets(size: int) -> list[tuple[int, int, int]]:
    """TorchSparse's ``get_kernel_offsets(size)`` order (before the tensor stride)."""
    axis = range(-size // 2 + 1, size // 2 + 1)
    if size % 2 == 1:
        return [(x, y, z) for z in axis for y in axis for x in axis]
    return [(x, y, z) for x in axis for y in axis for z in axis]


def dense_from_torchsparse(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """``conv3d`` weight ``(C_out, C_in, k, k, k)`` over ``[x, y, z]`` of a TorchSparse kernel."""
    kernel = kernel.reshape(-1, *kernel.shape[-2:])  # (C_in, C_out) -> (1, C_in, C_out)
    weight = torch.zeros(kernel.shape[2], kernel.shape[1], size, size, size)
    low = -size // 2 + 1
    for index, (x, y, z) in enumerate(torchsparse_offsets(size)):
        weight[:, :, x - low, y - low, z - low] = kernel[index].T
    return weight


class DenseSPVNAS:
    """SPVNAS's MinkUNet forward on a dense grid with masks of the active sites."""

    def __init__(self, state: dict[str, torch.Tensor], mask: torch.Tensor) -> None:
        self.state = state
        self.masks = [mask]  # (1, 1, G, G, G) per level
        for _ in range(4):
            self.masks.append(F.max_pool3d(self.masks[-1], 2))

    def bn(self, x: torch.Tensor, name: str, level: int) -> torch.Tensor:
        s = self.state
        shape = (1, -1, 1, 1, 1)
        x = (x - s[f"{name}.running_mean"].view(shape)) / torch.sqrt(
            s[f"{name}.running_var"].view(shape) + 1e-5)
        return (x * s[f"{name}.weight"].view(shape) + s[f"{name}.bias"].view(shape)) \
            * self.masks[level]

    def subm(self, x: torch.Tensor, name: str, size: int, level: int) -> torch.Tensor:
        weight = dense_from_torchsparse(self.state[f"{name}.kernel"], size)
        return F.conv3d(x, weight, padding=size // 2) * self.masks[level]

    def down(self, x: torch.Tensor, name: str, level: int) -> torch.Tensor:
        weight = dense_from_torchsparse(self.state[f"{name}.kernel"], 2)
        return F.conv3d(x, weight, stride=2) * self.masks[level + 1]

    def up(self, x: torch.Tensor, name: str, level: int) -> torch.Tensor:
        weight = dense_from_torchsparse(self.state[f"{name}.kernel"], 2).transpose(0, 1)
        return F.conv_transpose3d(x, weight, stride=2) * self.masks[level - 1]

    def residual(self, x: torch.Tensor, name: str, level: int) -> torch.Tensor:
        out = F.relu(self.bn(self.subm(x, f"{name}.net.0", 3, level), f"{name}.net.1", level))
        out = self.bn(self.subm(out, f"{name}.net.3", 3, level), f"{name}.net.4", level)
        if f"{name}.downsample.0.kernel" in self.state:
            short = self.bn(self.subm(x, f"{name}.downsample.0", 1, level),
                            f"{name}.downsample.1", level)
        else:
            short = x
        return F.relu(out + short)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.subm(x, "stem.0", 3, 0), "stem.1", 0))
        x = F.relu(self.bn(self.subm(x, "stem.3", 3, 0), "stem.4", 0))
        levels = [x]
        for stage in range(1, 5):
            x = F.relu(self.bn(self.down(x, f"stage{stage}.0.net.0", stage - 1),
                               f"stage{stage}.0.net.1", stage))
            for block in (1, 2):
                x = self.residual(x, f"stage{stage}.{block}", stage)
            levels.append(x)
        for j in range(1, 5):
            level = 4 - j
            x = F.relu(self.bn(self.up(x, f"up{j}.0.net.0", level + 1), f"up{j}.0.net.1", level))
            x = torch.cat([x, levels[level]], dim=1)
            for block in (0, 1):
                x = self.residual(x, f"up{j}.1.{block}", level)
        weight, bias = self.state["classifier.0.weight"], self.state["classifier.0.bias"]
        return torch.einsum("bcxyz,kc->bkxyz", x, weight) + bias.view(1, -1, 1, 1, 1)


# ---- a state dict with SPVNAS's names and shapes ------------------------------------------

def _bn_state(state: dict[str, torch.Tensor], name: str, channels: int,
              generator: torch.Generator) -> None:
    state[f"{name}.weight"] = 0.5 + torch.rand(channels, generator=generator)
    state[f"{name}.bias"] = 0.2 * torch.randn(channels, generator=generator)
    state[f"{name}.running_mean"] = 0.1 * torch.randn(channels, generator=generator)
    state[f"{name}.running_var"] = 0.5 + torch.rand(channels, generator=generator)
    state[f"{name}.num_batches_tracked"] = torch.tensor(100)


def _conv_state(state: dict[str, torch.Tensor], name: str, c_in: int, c_out: int, size: int,
                generator: torch.Generator) -> None:
    volume = size ** 3
    shape = (volume, c_in, c_out) if volume > 1 else (c_in, c_out)
    state[f"{name}.kernel"] = torch.randn(*shape, generator=generator) / (volume * c_in) ** 0.5


def _residual_state(state, name, c_in, c_out, generator) -> None:
    _conv_state(state, f"{name}.net.0", c_in, c_out, 3, generator)
    _bn_state(state, f"{name}.net.1", c_out, generator)
    _conv_state(state, f"{name}.net.3", c_out, c_out, 3, generator)
    _bn_state(state, f"{name}.net.4", c_out, generator)
    if c_in != c_out:
        _conv_state(state, f"{name}.downsample.0", c_in, c_out, 1, generator)
        _bn_state(state, f"{name}.downsample.1", c_out, generator)


def spvnas_state(cs: list[int], in_channels: int = 4, classes: int = 19,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under SPVNAS MinkUNet's keys (``cs`` after its ``int(cr * c)``)."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    _conv_state(state, "stem.0", in_channels, cs[0], 3, generator)
    _bn_state(state, "stem.1", cs[0], generator)
    _conv_state(state, "stem.3", cs[0], cs[0], 3, generator)
    _bn_state(state, "stem.4", cs[0], generator)
    for stage in range(1, 5):
        _conv_state(state, f"stage{stage}.0.net.0", cs[stage - 1], cs[stage - 1], 2, generator)
        _bn_state(state, f"stage{stage}.0.net.1", cs[stage - 1], generator)
        _residual_state(state, f"stage{stage}.1", cs[stage - 1], cs[stage], generator)
        _residual_state(state, f"stage{stage}.2", cs[stage], cs[stage], generator)
    for j in range(1, 5):
        _conv_state(state, f"up{j}.0.net.0", cs[3 + j], cs[4 + j], 2, generator)
        _bn_state(state, f"up{j}.0.net.1", cs[4 + j], generator)
        _residual_state(state, f"up{j}.1.0", cs[4 + j] + cs[4 - j], cs[4 + j], generator)
        _residual_state(state, f"up{j}.1.1", cs[4 + j], cs[4 + j], generator)
    state["classifier.0.weight"] = torch.randn(classes, cs[8], generator=generator) / cs[8] ** 0.5
    state["classifier.0.bias"] = 0.1 * torch.randn(classes, generator=generator)
    for index, (c_in, c_out) in enumerate([(cs[0], cs[4]), (cs[4], cs[6]), (cs[6], cs[8])]):
        # MinkUNet never runs them: batch norms at their initial state, as training leaves them
        state[f"point_transforms.{index}.0.weight"] = torch.randn(c_out, c_in)
        state[f"point_transforms.{index}.0.bias"] = torch.randn(c_out)
        state.update({f"point_transforms.{index}.1.{k}": v
                      for k, v in torch.nn.BatchNorm1d(c_out).state_dict().items()})
    return state


def _scan(count: int = 300, channels: int = 4, seed: int = 1):
    """TorchSparse 1.x coordinates ``(x, y, z, batch)`` inside the grid, and features."""
    generator = torch.Generator().manual_seed(seed)
    cells = torch.randperm(GRID ** 3, generator=generator)[:count]
    xyz = torch.stack([cells // GRID ** 2, cells // GRID % GRID, cells % GRID], dim=1)
    coords = torch.cat([xyz, torch.zeros(count, 1, dtype=torch.int64)], dim=1).int()
    return coords, torch.randn(count, channels, generator=generator)


def _dense_reference(state, coords_xyzb, feats) -> torch.Tensor:
    x = torch.zeros(1, feats.shape[1], GRID, GRID, GRID)
    mask = torch.zeros(1, 1, GRID, GRID, GRID)
    i, j, k = coords_xyzb[:, 0].long(), coords_xyzb[:, 1].long(), coords_xyzb[:, 2].long()
    x[0, :, i, j, k] = feats.T
    mask[0, 0, i, j, k] = 1.0
    with torch.no_grad():
        out = DenseSPVNAS(state, mask).forward(x)
    return out[0, :, i, j, k].T  # (N, classes) in the input's row order


def _ours(model, coords_xyzb, feats) -> torch.Tensor:
    coords = coords_from_torchsparse(coords_xyzb)
    with torch.no_grad():
        return model(sparse_collate([(coords[:, 1:], feats)])).feats


def _relative(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).abs().max() / reference.abs().max())


# ---- TorchSparse / SPVNAS -----------------------------------------------------------------

@pytest.mark.parametrize("wrap", ["torchpack", "module", "bare"])
def test_spvnas_minkunet_file_matches_the_dense_reference(tmp_path, wrap):
    state = spvnas_state(CR_CHANNELS)
    payload = {"model": state} if wrap == "torchpack" else \
        {"state_dict": {f"module.{k}": v for k, v in state.items()}} if wrap == "module" else state
    path = tmp_path / "minkunet_cr0.25.pt"
    torch.save(payload, path)
    model, info = load_pretrained(path, voxel_size=0.1)
    assert info.format == "torchsparse" and info.model == "minkunet"
    assert model.config.channels == tuple(CR_CHANNELS) and model.config.in_channels == 4
    assert info.class_names == SEMANTIC_KITTI_CLASSES
    assert info.input == PointInput(0.1, ("x", "y", "z", "intensity"), "round_shift")
    coords, feats = _scan()
    reference = _dense_reference(state, coords, feats)
    ours = _ours(model, coords, feats)
    assert ours.shape == reference.shape == (300, 19)
    assert _relative(ours, reference) < 1e-4, _relative(ours, reference)


def test_a_wrong_offset_order_would_fail_the_reference():
    """The test can fail: the same weights loaded without the x-fastest -> z-fastest reorder
    (reordering twice is the identity, so a pre-reordered state lands as stored)."""
    state = spvnas_state(CR_CHANNELS, seed=3)
    coords, feats = _scan(seed=4)
    reference = _dense_reference(state, coords, feats)
    model = MinkUNet(UNetConfig(4, 19, blocks=2, channels=tuple(CR_CHANNELS)))
    load_torchsparse_weights(model, state)
    assert _relative(_ours(model.eval(), coords, feats), reference) < 1e-4
    as_stored = {k: torchsparse_kernel(v) if k.endswith("kernel") and v.dim() == 3 else v
                 for k, v in state.items()}
    load_torchsparse_weights(model, as_stored)
    assert _relative(_ours(model.eval(), coords, feats), reference) > 1e-2


def test_torchsparse_kernel_reorders_odd_sizes_only():
    kernel = torch.arange(27 * 2 * 3, dtype=torch.float32).reshape(27, 2, 3)
    ours = torchsparse_kernel(kernel)
    from edgeinfer.common_sparse import kernel_offsets

    theirs = {offset: index for index, offset in enumerate(torchsparse_offsets(3))}
    for index, offset in enumerate(kernel_offsets((3, 3, 3), 3).tolist()):
        assert torch.equal(ours[index], kernel[theirs[tuple(offset)]])
    two = torch.randn(8, 2, 3)
    assert torch.equal(torchsparse_kernel(two), two)
    assert torchsparse_kernel(torch.ones(2, 3)).shape == (1, 2, 3)
    with pytest.raises(ValueError, match="not k x k x k"):
        torchsparse_kernel(torch.ones(26, 2, 3))


def test_spvnas_bad_files_name_the_key_and_both_shapes(tmp_path):
    state = spvnas_state(CR_CHANNELS)
    path = tmp_path / "minkunet.pt"

    broken = dict(state)
    del broken["stage2.1.net.3.kernel"]
    torch.save(broken, path)
    with pytest.raises(ValueError, match=r"missing \['stage2\.1\.net\.3\.kernel"):
        load_pretrained(path)

    extra = dict(state, **{"stage2.1.net.7.kernel": torch.ones(27, 8, 8)})
    torch.save(extra, path)
    with pytest.raises(ValueError, match=r"not mapped \['stage2\.1\.net\.7\.kernel'\]"):
        load_pretrained(path)

    reshaped = dict(state)
    reshaped["stage3.1.net.3.kernel"] = torch.ones(27, 32, 31)
    torch.save(reshaped, path)
    with pytest.raises(ValueError, match=r"stage3\.1\.net\.3\.kernel: TorchSparse kernel of "
                                         r"shape \(27, 32, 31\).*needs \(27, 32, 32\)"):
        load_pretrained(path)

    torch.save({k: v for k, v in state.items() if not k.startswith("classifier")}, path)
    with pytest.raises(ValueError, match=r"classifier\.0\.weight is missing"):
        load_pretrained(path)

    torch.save({"model": state}, path)
    path.write_bytes(path.read_bytes()[:5000])  # a download cut short
    with pytest.raises(ValueError, match="is not a readable point-cloud checkpoint"):
        load_pretrained(path)

    spvcnn = tmp_path / "SemanticKITTI_val_SPVCNN@119GMACs" / "init"
    spvcnn.parent.mkdir()
    torch.save({"model": state}, spvcnn)
    with pytest.raises(ValueError, match="SPVCNN re-voxelises"):
        load_pretrained(spvcnn)
    trained = dict(state, **{"point_transforms.0.1.num_batches_tracked": torch.tensor(9)})
    torch.save({"model": trained}, path)  # an SPVCNN under any name: its point branch trained
    with pytest.raises(ValueError, match="SPVCNN re-voxelises"):
        load_pretrained(path)


def test_nothing_is_half_loaded_into_a_given_model():
    model = MinkUNet(UNetConfig(4, 19, blocks=2, channels=tuple(CR_CHANNELS)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = spvnas_state(CR_CHANNELS)
    state["up4.1.1.net.4.running_var"] = torch.ones(5)
    with pytest.raises(ValueError, match=r"up4\.1\.1\.net\.4\.running_var: file shape \(5,\)"):
        load_torchsparse_weights(model, state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match="rename= is needed"):
        load_torchsparse_weights(create_model("spvcnn", in_channels=4, num_classes=3), state)


def test_spvnas_voxels_and_features_follow_info_input():
    generator = torch.Generator().manual_seed(5)
    points = (torch.rand(500, 3, generator=generator) * 4 - 2).numpy()
    intensity = torch.rand(500, generator=generator).numpy()
    spec = PointInput(0.25, ("x", "y", "z", "intensity"), "round_shift")
    sample = voxelize_scan(points, intensity, spec)
    voxels = torch.round(torch.from_numpy(points) / 0.25)
    voxels -= voxels.min(dim=0).values
    assert torch.equal(sample.coords.long(), torch.unique(voxels.long(), dim=0))
    first = sample.feats[sample.inverse]  # each point's voxel's features (its first point's)
    assert torch.equal(torch.round(first[:, :3] / 0.25) - torch.round(torch.from_numpy(
        points) / 0.25), torch.zeros(500, 3))
    with pytest.raises(ValueError, match=r"unknown feature columns \['colour'\]"):
        voxelize_scan(points, intensity, PointInput(0.25, ("x", "colour")))


def test_coords_from_torchsparse_moves_the_batch_first():
    coords = torch.tensor([[1, 2, 3, 0], [4, 5, 6, 1]])
    assert coords_from_torchsparse(coords).tolist() == [[0, 1, 2, 3], [1, 4, 5, 6]]
    with pytest.raises(ValueError, match="integer"):
        coords_from_torchsparse(torch.ones(2, 4))


def test_edgeinfer_files_refuse_voxel_size_and_features(tmp_path):
    model = MinkUNet(UNetConfig(4, 2, width=0.25))
    path = save_checkpoint(tmp_path / "mine.pt", model, {"class_names": ["a", "b"],
                                                          "voxel_size": 0.2})
    with pytest.raises(ValueError, match="records its own voxel size"):
        load_pretrained(path, voxel_size=0.1)
    with pytest.raises(ValueError, match="records its own features"):
        load_pretrained(path, features=("x", "y", "z", "intensity"))


# ---- spconv ---------------------------------------------------------------------------------

def test_spconv_kernel_layouts():
    weight = torch.randn(5, 3, 3, 3, 4)  # (C_out, kx, ky, kz, C_in)
    ours = spconv_kernel(weight)
    for index, (a, b, c) in enumerate(itertools.product(range(3), repeat=3)):
        assert torch.equal(ours[index], weight[:, a, b, c, :].T)
    single = torch.randn(5, 1, 1, 1, 4)
    assert torch.equal(spconv_kernel(single)[0], single.reshape(4, 5))  # spconv's conv1x1 view
    old = torch.randn(3, 3, 3, 4, 5)  # 1.x (kx, ky, kz, C_in, C_out)
    assert torch.equal(spconv_kernel(old, layout="1.x")[13], old[1, 1, 1])
    with pytest.raises(ValueError, match="layout must be"):
        spconv_kernel(weight, layout="KRSC")


def _spconv_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random weights in spconv 2.x shapes under the mirror's names."""
    from edgeinfer.pointcloud.importers import mirror_names

    generator = torch.Generator().manual_seed(seed)
    state = {}
    expected = model.state_dict()
    sizes = {f"{n}.kernel": m.config.geometry.kernel_size for n, m in model.named_modules()
             if hasattr(m, "kernel")}
    for ours, theirs in mirror_names(model).items():
        value = expected[ours]
        if ours in sizes:
            shape = (value.shape[2], *sizes[ours], value.shape[1])
            state[theirs] = torch.randn(*shape, generator=generator) / value[0].numel() ** 0.5
        elif ours.endswith("running_var"):
            state[theirs] = 0.5 + torch.rand(value.shape, generator=generator)
        elif value.is_floating_point():
            state[theirs] = 0.1 * torch.randn(value.shape, generator=generator) + (
                1.0 if ours.endswith("norm.weight") else 0.0)
        else:
            state[theirs] = value.clone()
    return state


def _dense_spconv_subm(feats, coords, weight):
    """A spconv 2.x SubMConv3d (weight KRSC) read densely: conv3d on the active sites."""
    grid = torch.zeros(1, feats.shape[1], GRID, GRID, GRID)
    i, j, k = coords[:, 0].long(), coords[:, 1].long(), coords[:, 2].long()
    grid[0, :, i, j, k] = feats.T
    if weight.shape[1:4] == (1, 1, 1):
        return feats @ weight.reshape(weight.shape[-1], weight.shape[0])
    out = F.conv3d(grid, weight.permute(0, 4, 1, 2, 3), padding=weight.shape[1] // 2)
    return out[0, :, i, j, k].T


@pytest.mark.parametrize("size", [3, 1])
def test_spconv_layer_import_matches_a_dense_reference(size):
    coords, feats = _scan(200, 6, seed=7)
    conv = create_model("minkunet", in_channels=6, num_classes=2, width=0.25).trunk.stem[0].conv
    if size == 1:
        from edgeinfer.pointcloud import nn as spnn

        conv = spnn.Conv3d(6, 8, 1)
    weight = torch.randn(8, size, size, size, 6)
    load_spconv_weights(conv, {"layer.weight": weight})
    with torch.no_grad():
        ours = conv(sparse_collate([(coords[:, :3], feats)])).feats
    reference = _dense_spconv_subm(feats, coords, weight)
    assert _relative(ours, reference) < 1e-5


def test_spconv_minkunet_file_loads_and_bad_shapes_are_named(tmp_path):
    model = MinkUNet(UNetConfig(4, 3, width=0.25))
    state = _spconv_state(model, seed=2)
    path = tmp_path / "spconv_minkunet.pt"
    torch.save({"state_dict": state}, path)
    loaded, info = load_pretrained(path)
    assert info.format == "spconv"
    assert loaded.config.stage_channels() == model.config.stage_channels()
    assert info.input.features == ("feature_0", "feature_1", "feature_2", "feature_3")
    kernel = loaded.trunk.stem[0].conv.kernel
    assert torch.equal(kernel, spconv_kernel(state["trunk.stem.0.conv.layer.weight"]))
    bad = dict(state)
    key = "trunk.down.1.blocks.0.shortcut.0.layer.weight"  # 1x1x1, 8 -> 16 channels
    bad[key] = bad[key].reshape(16, 8).T.reshape(8, 1, 1, 1, 16)  # the (C_in, .., C_out) trap
    torch.save(bad, path)
    with pytest.raises(ValueError, match=re.escape(
            f"{key}: spconv 2.x weight of shape (8, 1, 1, 1, 16); a 1x1x1 conv 8 -> 16 needs "
            "(16, 1, 1, 1, 8)")):
        load_pretrained(path)


def test_spconv_network_with_random_weights_imports_exactly():
    """The peer itself: a spconv network (our layout, random spconv weights) and its import."""
    pytest.importorskip("spconv")
    from edgeinfer.pointcloud.models.spconv_mirror import mirror_in_spconv, to_spconv

    torch.manual_seed(0)
    model = create_model("minkunet", in_channels=4, num_classes=5, width=0.25).eval()
    coords, feats = _scan(400, 4, seed=9)
    x = sparse_collate([(coords[:, :3], feats)])
    mirror = mirror_in_spconv(model, lambda: model(x))
    state = _spconv_state(model, seed=11)
    mirror.load_state_dict(state, strict=True)  # the spconv network gets the random weights
    fresh = load_spconv_weights(create_model("minkunet", in_channels=4, num_classes=5, width=0.25),
                                mirror.state_dict()).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # spconv's CPU kernels race at 2 threads (see test_pc_bench)
    try:
        with torch.no_grad():
            theirs = mirror.run(to_spconv(x)).feats
            ours = fresh(x).feats
    finally:
        torch.set_num_threads(threads)
    assert _relative(ours, theirs) < 1e-4, _relative(ours, theirs)
