"""Point <-> voxel feature transfer for SPVCNN-style models.

- ``voxelize``: the mean of the features of the points in each voxel (scatter-mean through the
  point -> voxel ``inverse`` index of ``sparse_quantize``).
- ``devoxelize``: trilinear interpolation of voxel features at float point positions.
  Positions are in voxel units at the input scale (``xyz / voxel_size``); a voxel's feature
  sits at its integer coordinate (TorchSparse convention), so at stride ``s`` a point sees the
  ``2 x 2 x 2`` voxels at ``floor(p / s) * s + {0, s}`` per axis. Only voxels that exist count:
  the weights of the present ones are renormalised to sum to 1. If the present neighbours all
  have weight 0 (the point lies on the face of missing voxels) they are averaged equally; a
  point with no present neighbour gets zeros.

Without gradients the weighted sum over the 8 corners runs as one numba pass
(``edgeinfer._jit``: each point's row written once, corners in a fixed order, the same at any
thread count); with them, or with numba off, as torch gathers.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from ... import _jit
from ...common_sparse import CoordTable
from ...common_sparse.hashing import lookup_pairs
from ..tensor import SparseTensor

__all__ = ["devoxelize", "voxelize"]



def _corners() -> torch.Tensor:
    """The 8 corner steps ``(8, 3)`` int64 of a trilinear cell, last axis fastest."""
    return torch.tensor(list(itertools.product((0, 1), repeat=3)), dtype=torch.int64)


def voxelize(
    point_feats: torch.Tensor, inverse: torch.Tensor, n_voxels: int | None = None
) -> torch.Tensor:
    """Scatter-mean ``point_feats (N, C)`` into voxels by ``inverse (N,)``: ``(M, C)``.

    ``M`` is ``n_voxels`` if given, else ``inverse.max() + 1``; an empty voxel gets zeros.

    Raises:
        TypeError: non-floating feats or non-integer inverse.
        ValueError: mismatched lengths, or an index outside ``[0, M)``.
    """
    if not isinstance(point_feats, torch.Tensor) or not point_feats.is_floating_point() \
            or point_feats.dim() != 2:
        raise TypeError("voxelize point_feats must be a floating tensor of shape (N, C)")
    if not isinstance(inverse, torch.Tensor) or inverse.is_floating_point() or inverse.dim() != 1:
        raise TypeError("voxelize inverse must be an integer tensor of shape (N,)")
    if inverse.shape[0] != point_feats.shape[0]:
        raise ValueError(
            f"voxelize needs one voxel index per point: point_feats has {point_feats.shape[0]} "
            f"rows, inverse {inverse.shape[0]}"
        )
    inverse = inverse.to(torch.int64)
    size = n_voxels if n_voxels is not None else (int(inverse.max()) + 1 if len(inverse) else 0)
    if len(inverse) and (int(inverse.min()) < 0 or int(inverse.max()) >= size):
        raise ValueError(
            f"voxelize inverse must lie in [0, {size}); got [{int(inverse.min())}, "
            f"{int(inverse.max())}]. Pass the inverse from sparse_quantize and its voxel count"
        )
    sums = point_feats.new_zeros(size, point_feats.shape[1]).index_add_(0, inverse, point_feats)
    counts = torch.bincount(inverse, minlength=size).clamp_(min=1).to(point_feats.dtype)
    return sums / counts[:, None]


def _check_points(point_coords: torch.Tensor) -> None:
    if not isinstance(point_coords, torch.Tensor) or not point_coords.is_floating_point() \
            or point_coords.dim() != 2 or point_coords.shape[1] != 4:
        got = (f"{point_coords.dtype} of shape {tuple(point_coords.shape)}"
               if isinstance(point_coords, torch.Tensor) else type(point_coords).__name__)
        raise TypeError(
            "devoxelize point_coords must be a floating tensor of shape (N, 4) as "
            f"(batch, x, y, z) in voxel units; got {got}"
        )
    if len(point_coords) and not bool(point_coords.abs().max() < 2.0**40):
        raise ValueError(
            "devoxelize point_coords must be finite and below 2**40 in magnitude; found NaN, "
            "inf or a huge value (are they in voxel units, i.e. xyz / voxel_size?)"
        )


def devoxelize(voxels: SparseTensor, point_coords: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of ``voxels.feats`` at ``point_coords (N, 4)``: ``(N, C)``.

    See the module docstring for the convention and the missing-neighbour rules.

    Raises:
        TypeError: ``voxels`` not a SparseTensor, or bad ``point_coords``.
        ValueError: non-finite or huge point coordinates.
    """
    if not isinstance(voxels, SparseTensor):
        raise TypeError(f"devoxelize voxels must be a SparseTensor; got {type(voxels).__name__}")
    _check_points(point_coords)
    feats = voxels.feats
    if len(point_coords) == 0 or len(voxels) == 0:
        return feats.new_zeros(len(point_coords), feats.shape[1])
    stride = torch.tensor(voxels.stride, dtype=torch.int64)
    scaled = point_coords[:, 1:].to(torch.float64) / stride  # (N, 3) in stride units
    base = torch.floor(scaled)
    frac = scaled - base  # (N, 3) in [0, 1)
    table_coords = voxels.coords.to(torch.int64)
    table = CoordTable.build(table_coords)
    batch = point_coords[:, :1].round().to(torch.int64)
    corners = _corners()
    cells = torch.cat([batch, base.to(torch.int64) * stride], dim=1)  # (N, 4) lowest corners
    row = torch.full((len(cells), corners.shape[0]), -1, dtype=torch.int64)
    pairs = lookup_pairs(table, table_coords, cells, corners * stride,
                         spacing=int(voxels.stride[-1]))  # fmt: skip
    for j, (voxel_rows, point_rows) in enumerate(pairs):
        row[point_rows, j] = voxel_rows
    weights = [torch.where(corner.bool(), frac, 1.0 - frac).prod(dim=1) for corner in corners]
    present = row >= 0  # (N, 8)
    weight = torch.stack(weights, dim=1) * present  # (N, 8) float64
    flat = weight.sum(dim=1) == 0
    weight[flat] = present[flat].to(torch.float64)
    weight = weight / weight.sum(dim=1, keepdim=True).clamp(min=1e-300)
    weight = weight.to(feats.dtype)
    needs_grad = torch.is_grad_enabled() and feats.requires_grad
    interpolate = None if needs_grad else _jit.get("devoxelize")
    if interpolate is not None and feats.dtype in (torch.float32, torch.float64):
        out = torch.empty(len(point_coords), feats.shape[1], dtype=feats.dtype)
        with _jit.threads():
            interpolate(feats.detach().contiguous().numpy(), row.numpy(),
                        weight.contiguous().numpy(), out.numpy())  # fmt: skip
        return out
    out = feats.new_zeros(len(point_coords), feats.shape[1])
    for j in range(corners.shape[0]):
        out = out + weight[:, j, None] * feats[row[:, j].clamp(min=0)]
    return out


@_jit.kernel("devoxelize")
def _devoxelize_kernel(numba):
    @numba.njit(parallel=True, cache=True, nogil=True, fastmath={"contract"})
    def interpolate(feats, rows, weights, out):
        n_points, channels = out.shape
        for block in numba.prange((n_points + 255) // 256):
            for n in range(block * 256, min(n_points, (block + 1) * 256)):
                for c in range(channels):
                    out[n, c] = 0.0
                for j in range(rows.shape[1]):  # corners in order; an absent one adds nothing
                    row, weight = rows[n, j], weights[n, j]
                    if row >= 0:
                        for c in range(channels):
                            out[n, c] += weight * feats[row, c]
    return interpolate


@_jit.warmer
def _warm() -> None:
    feats = np.zeros((1, 1), dtype=np.float32)
    _jit.get("devoxelize")(feats, np.zeros((1, 8), dtype=np.int64), feats.repeat(8, axis=1),
                           feats.copy())  # fmt: skip
