"""SPVCNN-style model: a MinkUNet voxel branch plus a per-point branch, fused three times.

Input contract: a ``PointTensor`` (per-point ``feats (N, in_channels)`` and float coordinates
``(batch, x, y, z)`` in voxel units). The model voxelises it itself (mean of the points per
stride-1 voxel), runs the U-Net, and moves features between the branches::

    x0..x4 = encode(voxels)                    # strides 1, 2, 4, 8, 16
    z0 = devox(x0)
    z1 = devox(x4) + mlp0(z0);   y2 = up1,2(vox(z1) on x4's sites)
    z2 = devox(y2) + mlp1(z1);   y4 = up3,4(vox(z2) on y2's sites)
    z3 = devox(y4) + mlp2(z2);   logits = Linear(z3)           # (N, num_classes)

``devox`` is trilinear interpolation (``functional.devoxelize``), ``vox`` the per-voxel mean
of the point features (``functional.voxelize``). Output: one row of logits per input point,
in the input's point order.
"""

from __future__ import annotations

import torch

from ..tensor import SparseTensor
from .minkunet import UNetConfig, UNetTrunk
from .points import PointMLP, PointTensor, PointToVoxel, VoxelToPoint

__all__ = ["SPVCNN"]


class SPVCNN(torch.nn.Module):
    """Point-voxel U-Net: ``PointTensor (N, in_channels)`` -> logits ``(N, num_classes)``.

    Raises (in ``forward``): TypeError for an input that is not a ``PointTensor``,
    ValueError for a channel mismatch.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"SPVCNN needs a UNetConfig; got {type(config).__name__}")
        self.config = config
        c = config.stage_channels()
        self.trunk = UNetTrunk(config)
        self.point_mlps = torch.nn.ModuleList(
            [PointMLP(c[0], c[4]), PointMLP(c[4], c[6]), PointMLP(c[6], c[8])]
        )
        self.to_points = VoxelToPoint()
        self.to_voxels = PointToVoxel()
        self.classifier = torch.nn.Linear(c[8], config.num_classes)

    def forward(self, points: PointTensor) -> torch.Tensor:
        """Per-point logits ``(N, num_classes)``."""
        if not isinstance(points, PointTensor):
            raise TypeError(
                "SPVCNN expects a PointTensor (per-point feats + float coords in voxel "
                f"units, e.g. PointTensor.from_points(xyz, feats, voxel_size)); got "
                f"{type(points).__name__}"
            )
        if points.feats.shape[1] != self.config.in_channels:
            raise ValueError(
                f"SPVCNN was built with in_channels={self.config.in_channels}; got points "
                f"with {points.feats.shape[1]} feature channels"
            )
        voxels, _ = points.voxelize()
        return self.run(voxels, points)

    def run(self, voxels: SparseTensor, points: PointTensor) -> torch.Tensor:
        """The network on already voxelised points (no input checks)."""
        levels = self.trunk.encode(voxels)
        z0 = self.to_points(levels[0], points)
        z1 = self.to_points(levels[4], points) + self.point_mlps[0](z0)
        y2 = self.trunk.decode(levels, 0, 2, self.to_voxels(levels[4], points, z1))
        z2 = self.to_points(y2, points) + self.point_mlps[1](z1)
        y4 = self.trunk.decode(levels, 2, 4, self.to_voxels(y2, points, z2))
        z3 = self.to_points(y4, points) + self.point_mlps[2](z2)
        return self.classifier(z3)
