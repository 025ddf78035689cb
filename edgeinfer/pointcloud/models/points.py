"""``PointTensor``: raw points for SPVCNN, and the point <-> voxel steps between the branches.

A ``PointTensor`` holds per-point features and float coordinates ``(batch, x, y, z)`` in
*voxel units* (``xyz / voxel_size``): point ``p`` lies in voxel ``floor(p)`` at stride 1 and
in ``floor(floor(p) / s) * s`` at stride ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...common_sparse import CoordTable, unique_coords
from ..functional import devoxelize, voxelize
from ..tensor import SparseTensor

__all__ = ["PointMLP", "PointTensor", "PointToVoxel", "VoxelToPoint", "point_rows"]


def _as_tensor(value: Any) -> Any:
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


@dataclass(frozen=True, eq=False)
class PointTensor:
    """Points of one batch: ``feats (N, C)`` float, ``coords (N, 4)`` float in voxel units.

    Raises:
        TypeError: non-floating feats or coords. ValueError: wrong shapes, row mismatch,
            non-finite coordinates, a negative batch index.
    """

    feats: torch.Tensor
    coords: torch.Tensor

    def __post_init__(self) -> None:
        feats, coords = _as_tensor(self.feats), _as_tensor(self.coords)
        for name, value, width in (("feats", feats, None), ("coords", coords, 4)):
            ok = isinstance(value, torch.Tensor) and value.is_floating_point() \
                and value.dim() == 2 and (width is None or value.shape[1] == width)
            if not ok:
                got = (f"{value.dtype} of shape {tuple(value.shape)}"
                       if isinstance(value, torch.Tensor) else type(value).__name__)
                shape = "(N, C)" if width is None else "(N, 4) as (batch, x, y, z) in voxel units"
                raise TypeError(f"PointTensor.{name} must be a floating tensor {shape}; got {got}")
        if feats.shape[0] != coords.shape[0]:
            raise ValueError(
                f"PointTensor needs one coordinate row per feature row; got {coords.shape[0]} "
                f"coords and {feats.shape[0]} feats"
            )
        if len(coords) and not (bool(torch.isfinite(coords).all()) and coords[:, 0].min() >= 0):
            raise ValueError(
                "PointTensor.coords must be finite with batch column >= 0; drop NaN/inf points "
                "and number batch items 0..B-1"
            )
        object.__setattr__(self, "feats", feats)
        object.__setattr__(self, "coords", coords)

    @classmethod
    def from_points(cls, xyz: Any, feats: Any, voxel_size: float, batch: int = 0) -> PointTensor:
        """One batch item from metric points ``xyz (N, 3)`` and ``feats (N, C)``.

        Raises:
            ValueError: ``voxel_size`` not > 0, plus the checks of the class.
        """
        if not voxel_size > 0:
            raise ValueError(f"voxel_size must be > 0 (metres per voxel); got {voxel_size!r}")
        xyz = _as_tensor(xyz)
        column = torch.full((len(xyz), 1), float(batch), dtype=xyz.dtype)
        return cls(_as_tensor(feats), torch.cat([column, xyz / voxel_size], dim=1))

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    def voxel_sites(self, stride: int = 1) -> torch.Tensor:
        """``(N, 4)`` int64 site of every point at ``stride``: ``floor(floor(p) / s) * s``."""
        sites = torch.floor(self.coords).to(torch.int64)
        if stride != 1:
            sites[:, 1:] = torch.div(sites[:, 1:], stride, rounding_mode="floor") * stride
        return sites

    def voxelize(self) -> tuple[SparseTensor, torch.Tensor]:
        """Stride-1 voxels (mean of their points' feats, lexicographic order) and the
        point -> voxel ``inverse (N,)``."""
        coords, inverse = unique_coords(self.voxel_sites())
        feats = voxelize(self.feats, inverse, len(coords))
        return SparseTensor(feats, coords.to(torch.int32)), inverse


def point_rows(voxels: SparseTensor, points: PointTensor) -> torch.Tensor:
    """Row of ``voxels`` holding each point (at ``voxels``' stride): ``(N,)`` int64.

    Raises:
        ValueError: anisotropic stride, or a point whose voxel is not among ``voxels``.
    """
    if len(set(voxels.stride)) != 1:
        raise ValueError(f"point_rows needs an isotropic stride; got {voxels.stride}")
    rows = CoordTable.build(voxels.coords).query(points.voxel_sites(voxels.stride[0]))
    if len(rows) and int(rows.min()) < 0:
        raise ValueError(
            f"{int((rows < 0).sum())} points fall in no voxel of the stride-{voxels.stride[0]} "
            "tensor; pass the voxels made from these points (PointTensor.voxelize)"
        )
    return rows


class VoxelToPoint(torch.nn.Module):
    """Trilinear ``devoxelize`` of voxel feats at the points: ``(N, C)``."""

    def forward(self, voxels: SparseTensor, points: PointTensor) -> torch.Tensor:
        return devoxelize(voxels, points.coords)


class PointToVoxel(torch.nn.Module):
    """Replace ``voxels``' feats by the mean of ``point_feats (N, C)`` over each voxel."""

    def forward(self, voxels: SparseTensor, points: PointTensor,
                point_feats: torch.Tensor) -> SparseTensor:
        return voxels.replace(
            feats=voxelize(point_feats, point_rows(voxels, points), len(voxels))
        )


class PointMLP(torch.nn.Module):
    """Per-point ``Linear -> BatchNorm1d -> ReLU``: ``(N, C_in)`` -> ``(N, C_out)``.

    An empty input gives an empty output (BatchNorm statistics are left alone).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_channels, out_channels)
        self.norm = torch.nn.BatchNorm1d(out_channels)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        out = self.linear(feats)
        return torch.relu(self.norm(out)) if len(out) else out
