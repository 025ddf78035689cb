"""Slow, obviously correct references for the point-cloud layers: dense convs and loops."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F  # noqa: N812

__all__ = [
    "dense_selection",
    "dense_transposed_conv_at_sites",
    "loop_devoxelize",
    "loop_voxelize",
    "sparse_to_dense_weight",
]


def sparse_to_dense_weight(kernel: torch.Tensor, k: int) -> torch.Tensor:
    """``(K, C_in, C_out)`` -> ``conv_transpose3d`` weight ``(C_in, C_out, k, k, k)``."""
    return kernel.reshape(k, k, k, kernel.shape[1], kernel.shape[2]).permute(3, 4, 0, 1, 2)


def dense_transposed_conv_at_sites(coarse: torch.Tensor, feats: torch.Tensor,
                                   kernel: torch.Tensor, k: int, fine: torch.Tensor, *,
                                   stride: int, fine_stride: int = 1) -> torch.Tensor:
    """Dense ``conv_transpose3d`` of the coarse sites, read back at the ``fine`` sites.

    Grid units are ``fine_stride``; padding ``k // 2`` for odd k, 0 for even (the offsets of
    the sparse kernel); the origin is shifted by a multiple of ``stride``.
    """
    coarse, fine = coarse.to(torch.int64), fine.to(torch.int64)
    units_c, units_f = coarse[:, 1:] // fine_stride, fine[:, 1:] // fine_stride
    low = int(torch.minimum(units_c.min(0).values, units_f.min(0).values).min())
    pad = k // 2 if k % 2 else 0
    shift = (-(low // stride) + 1 + pad) * stride
    cells = (units_c + shift) // stride
    size = int(cells.max()) + k + 3
    dense = feats.new_zeros(int(coarse[:, 0].max()) + 1, feats.shape[1], size, size, size)
    dense[coarse[:, 0], :, cells[:, 0], cells[:, 1], cells[:, 2]] = feats
    out = F.conv_transpose3d(dense, sparse_to_dense_weight(kernel, k), stride=stride,
                             padding=pad)
    at = units_f + shift
    return out[fine[:, 0], :, at[:, 0], at[:, 1], at[:, 2]]


def dense_selection(in_coords: torch.Tensor, out_coords: torch.Tensor, offset: list[int],
                    step: int) -> torch.Tensor:
    """The ``(n_out, n_in)`` 0/1 matrix: out site ``q`` sees in site ``q + offset * step``."""
    where = {tuple(row): i for i, row in enumerate(in_coords.tolist())}
    matrix = torch.zeros(len(out_coords), len(in_coords))
    for o, row in enumerate(out_coords.tolist()):
        target = (row[0], *[v + d * step for v, d in zip(row[1:], offset, strict=True)])
        if target in where:
            matrix[o, where[target]] = 1.0
    return matrix


def loop_voxelize(point_feats: torch.Tensor, inverse: torch.Tensor, n_voxels: int):
    """Mean of the points of each voxel, one point at a time (float64)."""
    sums = torch.zeros(n_voxels, point_feats.shape[1], dtype=torch.float64)
    counts = [0] * n_voxels
    for row, voxel in enumerate(inverse.tolist()):
        sums[voxel] += point_feats[row].double()
        counts[voxel] += 1
    return torch.stack([sums[v] / max(counts[v], 1) for v in range(n_voxels)])


def loop_devoxelize(coords: torch.Tensor, feats: torch.Tensor, stride: int,
                    points: torch.Tensor) -> torch.Tensor:
    """Trilinear weights over the present corners of each point's cell, renormalised."""
    where = {tuple(row): i for i, row in enumerate(coords.tolist())}
    out = torch.zeros(len(points), feats.shape[1], dtype=torch.float64)
    for n, (batch, *xyz) in enumerate(points.double().tolist()):
        base = [math.floor(v / stride) for v in xyz]
        frac = [v / stride - b for v, b in zip(xyz, base, strict=True)]
        found = []
        for corner in itertools.product((0, 1), repeat=3):
            site = (round(batch), *[(b + c) * stride for b, c in zip(base, corner, strict=True)])
            weight = math.prod(f if c else 1 - f for f, c in zip(frac, corner, strict=True))
            if site in where:
                found.append((weight, where[site]))
        total = sum(w for w, _ in found)
        for weight, row in found:
            share = weight / total if total > 0 else 1 / len(found)
            out[n] += share * feats[row].double()
    return out
