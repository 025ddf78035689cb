"""Hostile arrays and files for the point-cloud engine's public entry points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.robustness.hostile import Case, random_bytes, write


def _coords(count: int = 100, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    cube = torch.stack(torch.meshgrid(*[torch.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return cube[torch.randperm(len(cube), generator=generator)[:count]].to(torch.int32)


def _tensor(feats, coords, stride=1):
    from edgeinfer.pointcloud import SparseTensor

    return lambda tmp: SparseTensor(feats, coords, stride)


def _batched(coords: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32), coords], dim=1)


def _sparse_tensor_cases() -> list[Case]:
    good = _batched(_coords())
    entry = "SparseTensor"
    return [
        Case(entry, "int64 coords beyond int32", _tensor(
            torch.ones(2, 1), torch.tensor([[0, 2**32 + 5, 0, 0], [0, 7, 0, 0]])), r"coords.*x"),
        Case(entry, "coords beyond the packable range", _tensor(
            torch.ones(2, 1), torch.tensor([[0, 40000, 0, 0], [0, 7, 0, 0]])), r"coords.*x"),
        Case(entry, "float coords", _tensor(torch.ones(100, 1), good.float()),
             r"coords must be an integer"),
        Case(entry, "coords (N, 3)", _tensor(torch.ones(100, 1), good[:, 1:]), r"coords.*\(N, 4\)"),
        Case(entry, "feats one row short", _tensor(torch.ones(99, 1), good), r"feats.*100.*99"),
        Case(entry, "integer feats", _tensor(torch.ones(100, 1, dtype=torch.int64), good),
             r"feats must be a floating"),
        Case(entry, "1-D feats", _tensor(torch.ones(100), good), r"feats.*\(N, C\)"),
        Case(entry, "duplicate coords", _tensor(torch.ones(2, 1), good[[0, 0]]),
             r"coords must be unique"),
        Case(entry, "negative batch index", _tensor(
            torch.ones(1, 1), torch.tensor([[-1, 0, 0, 0]])), r"batch column"),
        Case(entry, "coords off the stride grid", _tensor(
            torch.ones(1, 1), torch.tensor([[0, 1, 0, 0]]), 2), r"multiples"),
        Case(entry, "stride 0", _tensor(torch.ones(1, 1), torch.tensor([[0, 0, 0, 0]]), 0),
             r"stride"),
        Case(entry, "coords a list", _tensor(torch.ones(1, 1), [[0, 0, 0, 0]]), r"coords"),
        Case(entry, "NaN feats", _tensor(torch.full((100, 2), float("nan")), good),
             r"feats.*(NaN|finite)"),
        Case(entry, "empty tensor", _tensor(torch.ones(0, 3), torch.zeros(0, 4, dtype=torch.int32)),
             check=lambda tensor: len(tensor) == 0),
    ]


def _collate(items):
    def run(tmp: Path):
        from edgeinfer.pointcloud import sparse_collate

        return sparse_collate(items)

    return run


def _collate_cases() -> list[Case]:
    coords = _coords(100)
    feats, other = torch.rand(100, 2), torch.rand(100, 2)
    entry = "sparse_collate"
    return [
        Case(entry, "counts off by one each way", _collate(
            [(coords[:50], feats[:49]), (coords[50:100], other[:51])]), r"item 0.*50.*49"),
        Case(entry, "second item one row long", _collate(
            [(coords[:50], feats[:50]), (coords[50:99], other[:50])]), r"item 1.*49.*50"),
        Case(entry, "empty list", _collate([]), r"non-empty"),
        Case(entry, "item not a pair", _collate([coords]), r"item 0"),
        Case(entry, "float coords", _collate([(coords.float(), feats)]), r"item 0.*integer"),
        Case(entry, "mixed channel counts", _collate(
            [(coords[:50], feats[:50]), (coords[50:], torch.rand(50, 3))]), r"channel"),
        Case(entry, "numpy pair", _collate([(coords.numpy(), feats.numpy())]),
             check=lambda tensor: len(tensor) == 100
             and torch.equal(tensor.feats, feats) and torch.equal(tensor.coords[:, 1:], coords)),
    ]


def _quantize(points, voxel_size=0.1):
    def run(tmp: Path):
        from edgeinfer.pointcloud import sparse_quantize

        return sparse_quantize(points, voxel_size)

    return run


def _quantize_cases() -> list[Case]:
    points = np.random.default_rng(0).uniform(-5, 5, (200, 4)).astype(np.float32)
    nan = points.copy()
    nan[17, 2] = np.nan
    entry = "sparse_quantize"
    return [
        Case(entry, "NaN point", _quantize(nan), r"points must be finite.*row 17"),
        Case(entry, "voxel_size 0", _quantize(points, 0.0), r"voxel_size"),
        Case(entry, "voxel_size NaN", _quantize(points, float("nan")), r"voxel_size"),
        Case(entry, "voxel_size string", _quantize(points, "0.1"), r"voxel_size"),
        Case(entry, "integer points", _quantize(points.astype(np.int64)), r"points must be a fl"),
        Case(entry, "points (N, 2)", _quantize(points[:, :2]), r"points must have shape"),
        Case(entry, "points far beyond the grid", _quantize(points * 1e6, 0.01),
             r"voxel|range|spans"),
    ]


def _conv(feats_dtype=torch.float32, channels=4):
    def run(tmp: Path):
        from edgeinfer.pointcloud import SparseTensor
        from edgeinfer.pointcloud import nn as spnn

        layer = spnn.Conv3d(4, 8, kernel_size=3)
        coords = _batched(_coords())
        return layer(SparseTensor(torch.rand(len(coords), channels, dtype=feats_dtype), coords))

    return run


def _conv_cases() -> list[Case]:
    return [
        Case("Conv3d", "wrong channel count", _conv(channels=3), r"in_channels|channels"),
        Case("Conv3d", "float64 feats into a float32 layer", _conv(torch.float64),
             r"dtype|float64|Double"),
        Case("Conv3d", "not a SparseTensor", lambda tmp: __import__(
            "edgeinfer.pointcloud", fromlist=["nn"]).nn.Conv3d(4, 8)(torch.rand(3, 4)),
             r"SparseTensor"),
    ]


def _load_checkpoint(data: bytes | None, name: str = "model.pt"):
    def run(tmp: Path):
        from edgeinfer.pointcloud import load_checkpoint

        return load_checkpoint(tmp / name if data is None else write(tmp, name, data))

    return run


def _checkpoint_variant(change) -> bytes:
    import io

    from edgeinfer.pointcloud.train import PRETRAINED_PATH

    payload = torch.load(PRETRAINED_PATH, weights_only=True)
    change(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _checkpoint_cases() -> list[Case]:
    from edgeinfer.pointcloud.train import PRETRAINED_PATH

    good = Path(PRETRAINED_PATH).read_bytes() if Path(PRETRAINED_PATH).is_file() else b""

    def drop_key(payload):
        payload["state_dict"].pop(next(iter(payload["state_dict"])))

    def reshape_key(payload):
        name = next(iter(payload["state_dict"]))
        payload["state_dict"][name] = torch.zeros(1, 2, 3)

    entry = "pointcloud.load_checkpoint"
    return [
        Case(entry, "missing file", _load_checkpoint(None, "absent.pt"), r"absent\.pt"),
        Case(entry, "random bytes", _load_checkpoint(random_bytes(11, 4000)), r"model\.pt"),
        Case(entry, "cut in half", _load_checkpoint(good[: len(good) // 2]), r"model\.pt"),
        Case(entry, "empty file", _load_checkpoint(b""), r"model\.pt"),
        Case(entry, "a missing weight", lambda tmp: _load_checkpoint(
            _checkpoint_variant(drop_key))(tmp), r"model\.pt.*(missing|key)"),
        Case(entry, "a weight of another shape", lambda tmp: _load_checkpoint(
            _checkpoint_variant(reshape_key))(tmp), r"model\.pt.*shape"),
    ]


def cases() -> list[Case]:
    return (_sparse_tensor_cases() + _collate_cases() + _quantize_cases() + _conv_cases()
            + _checkpoint_cases())
