"""Slow, obviously correct references for the sparse core: dense convs and python loops."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F  # noqa: N812

__all__ = [
    "brute_force_pairs",
    "brute_force_strided_coords",
    "dense_conv_at_sites",
    "dense_to_sparse_weight",
    "loop_conv",
    "map_triples",
    "random_coords",
]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def random_coords(n: int, ndim: int, extent: int, batches: int = 2, seed: int = 0,
                  low: int = 0) -> torch.Tensor:
    """``n`` (or fewer) unique random coords ``(M, 1+D)`` int64 in ``[low, low+extent)``."""
    gen = torch.Generator().manual_seed(seed)
    batch = torch.randint(0, batches, (n, 1), generator=gen)
    xyz = torch.randint(low, low + extent, (n, ndim), generator=gen)
    coords = torch.unique(torch.cat([batch, xyz], dim=1), dim=0)
    return coords[torch.randperm(len(coords), generator=gen)]


def _offsets(kernel_size: int, ndim: int) -> list[tuple[int, ...]]:
    half = kernel_size // 2
    axis = range(-half, half + 1) if kernel_size % 2 else range(kernel_size)
    return list(itertools.product(axis, repeat=ndim))


def brute_force_strided_coords(coords: torch.Tensor, s_out: int) -> set[tuple[int, ...]]:
    """The set of output sites ``(b, floor(x / s_out) * s_out, ...)``, by a python loop."""
    out = set()
    for row in coords.tolist():
        out.add((row[0], *[(v // s_out) * s_out for v in row[1:]]))
    return out


def brute_force_pairs(in_coords: torch.Tensor, out_coords: torch.Tensor, kernel_size: int,
                      step_scale: int) -> set[tuple[int, int, int]]:
    """``{(offset index, in row, out row)}``: out site ``q`` sees in site ``q + d * scale``."""
    ndim = in_coords.shape[1] - 1
    where = {tuple(row): i for i, row in enumerate(in_coords.tolist())}
    triples = set()
    for k, offset in enumerate(_offsets(kernel_size, ndim)):
        for o, row in enumerate(out_coords.tolist()):
            target = (row[0], *[v + d * step_scale for v, d in zip(row[1:], offset, strict=True)])
            if target in where:
                triples.add((k, where[target], o))
    return triples


def map_triples(kernel_map) -> set[tuple[int, int, int]]:
    """The pairs of a ``KernelMap`` as ``{(offset index, in row, out row)}``."""
    triples = set()
    pairs = zip(kernel_map.in_rows, kernel_map.out_rows, strict=True)
    for k, (rows_in, rows_out) in enumerate(pairs):
        triples.update((k, i, o) for i, o in zip(rows_in.tolist(), rows_out.tolist(), strict=True))
    return triples


def loop_conv(feats: torch.Tensor, weight: torch.Tensor, triples, n_out: int) -> torch.Tensor:
    """``y[o] += feats[i] @ weight[k]`` for every triple, one at a time."""
    out = feats.new_zeros(n_out, weight.shape[2])
    for k, i, o in sorted(triples):
        out[o] += feats[i] @ weight[k]
    return out


def dense_to_sparse_weight(weight: torch.Tensor) -> torch.Tensor:
    """Dense ``(C_out, C_in, k...)`` -> per offset ``(K, C_in, C_out)`` (row-major offsets)."""
    ndim = weight.dim() - 2
    c_out, c_in = weight.shape[:2]
    return weight.permute(*range(2, 2 + ndim), 1, 0).reshape(-1, c_in, c_out).contiguous()


def dense_conv_at_sites(coords: torch.Tensor, feats: torch.Tensor, weight: torch.Tensor,
                        out_coords: torch.Tensor, *, stride: int = 1, dilation: int = 1,
                        tensor_stride: int = 1) -> torch.Tensor:
    """Dense ``F.convNd`` on the densified input, read back at ``out_coords`` -> (M, C_out).

    Grid units are ``tensor_stride``; the grid origin is shifted by a multiple of ``stride``
    so ``floor`` alignment is kept; padding ``dilation * (k // 2)`` for odd k, 0 for even.
    """
    ndim, k = coords.shape[1] - 1, weight.shape[-1]
    units = coords[:, 1:] // tensor_stride
    out_units = out_coords[:, 1:] // tensor_stride
    low = torch.minimum(units.min(0).values, out_units.min(0).values)
    shift = -(low // stride) * stride + stride * (dilation * k + 1)  # multiple of stride, >= margin
    units, out_units = units + shift, out_units + shift
    size = int(torch.maximum(units.max(), out_units.max())) + dilation * k + stride + 1
    batches = int(max(coords[:, 0].max(), out_coords[:, 0].max())) + 1
    dense = feats.new_zeros(batches, feats.shape[1], *([size] * ndim))
    dense[(coords[:, 0], slice(None), *units.T)] = feats
    pad = dilation * (k // 2) if k % 2 else 0
    out = _CONV[ndim](dense, weight, stride=stride, padding=pad, dilation=dilation)
    return out[(out_coords[:, 0], slice(None), *(out_units // stride).T)]
