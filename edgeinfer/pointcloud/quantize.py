"""Raw points to voxels (``sparse_quantize``) and single scans to one batch (``sparse_collate``).

``sparse_quantize`` returns the voxels sorted by coordinate ``(x, y, z)`` lexicographically, so
the result does not depend on the order of the input points (up to the matching permutation of
``indices``/``inverse``). The representative of a voxel is its first point in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..common_sparse import pack_coords, quantize_points, unpack_coords
from .tensor import SparseTensor, as_triple

__all__ = ["sparse_collate", "sparse_quantize"]


def _as_points(points: Any) -> torch.Tensor:
    """Float ``(N, 3+)`` points -> their first three columns as a torch tensor."""
    tensor = torch.from_numpy(points) if isinstance(points, np.ndarray) else points
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        got = tensor.dtype if isinstance(tensor, torch.Tensor) else type(points).__name__
        raise TypeError(
            f"points must be a floating numpy array or torch.Tensor of shape (N, 3+); got {got}"
        )
    if tensor.dim() != 2 or tensor.shape[1] < 3:
        raise ValueError(
            "points must have shape (N, 3+) with x, y, z in the first three columns; "
            f"got {tuple(tensor.shape)}"
        )
    xyz = tensor[:, :3]
    bad = ~torch.isfinite(xyz).all(dim=1)
    if bool(bad.any()):
        row = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"points must be finite; {int(bad.sum())} of {len(xyz)} rows hold NaN or inf, "
            f"the first is row {row}: {xyz[row].tolist()}. Drop them before quantising"
        )
    return xyz


def _check_voxel_size(voxel_size: Any) -> float | tuple[float, ...]:
    if isinstance(voxel_size, str | bytes | bool):
        raise TypeError(
            f"voxel_size must be a positive finite number or 3 of them (x, y, z); got "
            f"{type(voxel_size).__name__} {voxel_size!r}"
        )
    try:
        sizes = np.atleast_1d(np.asarray(voxel_size, dtype=np.float64))
    except (TypeError, ValueError):
        sizes = np.array([np.nan])
    if sizes.ndim != 1 or sizes.size not in (1, 3) or not bool(np.all(sizes > 0)) \
            or not bool(np.all(np.isfinite(sizes))):
        raise ValueError(
            f"voxel_size must be a positive finite number or 3 of them (x, y, z); "
            f"got {voxel_size!r}"
        )
    return float(sizes[0]) if sizes.size == 1 else tuple(float(s) for s in sizes)


def sparse_quantize(
    points: Any,
    voxel_size: float | Sequence[float],
    *,
    return_index: bool = True,
    return_inverse: bool = True,
    mode: str = "floor",
) -> Any:
    """Voxelise ``points (N, 3+)``: voxel ``floor(xyz / voxel_size)`` of each point, unique.

    Args:
        points: float numpy array or torch tensor; only the first 3 columns are used.
        voxel_size: positive size, one number or ``(vx, vy, vz)``.
        return_index / return_inverse: which index arrays to return.
        mode: ``"floor"`` (above) or ``"round_shift"``: SPVNAS/TorchSparse preprocessing,
            ``round(xyz / voxel_size)`` (half to even, in the points' dtype) shifted so each
            axis starts at 0 — to reproduce the voxels a TorchSparse checkpoint was trained on.

    Returns ``coords`` alone if both flags are False, else a tuple ``(coords[, indices]
    [, inverse])``: ``coords (M, 3)`` int32 sorted lexicographically (no batch column),
    ``indices (M,)`` int64 the first input point of each voxel, ``inverse (N,)`` int64 the
    voxel of each point (``coords[inverse]`` are the points' voxels). numpy in, numpy out;
    torch in, torch out.

    Raises:
        TypeError: points not floating. ValueError: bad shape, NaN/inf points (with the
        count and first offending row), non-positive voxel size, voxels beyond +-2**15.
    """
    xyz = _as_points(points)
    if mode == "floor":
        voxels = quantize_points(xyz, _check_voxel_size(voxel_size))  # (N, 3) int64
    elif mode == "round_shift":
        voxels = _round_shift(xyz, _check_voxel_size(voxel_size))
    else:
        raise ValueError(f"mode must be 'floor' or 'round_shift'; got {mode!r}")
    keyed = torch.cat([voxels.new_zeros(len(voxels), 1), voxels], dim=1)
    keys = pack_coords(keyed, "voxel coords (floor(points / voxel_size))")
    unique_keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    coords = unpack_coords(unique_keys, 3)[:, 1:].to(torch.int32)
    order = torch.arange(len(keys), dtype=torch.int64)
    indices = torch.full((len(unique_keys),), len(keys), dtype=torch.int64)
    indices.scatter_reduce_(0, inverse, order, reduce="amin", include_self=True)
    results = [coords]
    results += [indices] if return_index else []
    results += [inverse] if return_inverse else []
    if isinstance(points, np.ndarray):
        results = [r.numpy() for r in results]
    return results[0] if len(results) == 1 else tuple(results)


def _round_shift(xyz: torch.Tensor, voxel_size: float | tuple[float, ...]) -> torch.Tensor:
    # (N, 3) -> (N, 3) int64: round(xyz / voxel) in xyz's dtype, minus the per-axis minimum
    sizes = voxel_size if isinstance(voxel_size, float | int) else \
        torch.tensor(voxel_size, dtype=xyz.dtype)
    scaled = torch.round(xyz / sizes)
    if scaled.numel() and not bool(scaled.abs().max() < 2.0**62):
        raise ValueError("points / voxel_size overflow int64; use a larger voxel_size")
    voxels = scaled.to(torch.int64)
    return voxels - voxels.min(dim=0).values if len(voxels) else voxels


def _item_parts(item: Any, position: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """``(coords (N, 3), feats (N, C), stride)`` of one collate item."""
    if isinstance(item, SparseTensor):
        coords, feats, stride = item.coords, item.feats, item.stride
    elif isinstance(item, tuple | list) and len(item) == 2:
        coords, feats, stride = item[0], item[1], 1
        coords = torch.from_numpy(coords) if isinstance(coords, np.ndarray) else coords
        feats = torch.from_numpy(feats) if isinstance(feats, np.ndarray) else feats
    else:
        raise TypeError(
            f"sparse_collate items must be SparseTensor or (coords, feats) pairs; item "
            f"{position} is {type(item).__name__}"
        )
    if not isinstance(coords, torch.Tensor) or coords.dim() != 2 or coords.shape[1] not in (3, 4):
        shape = tuple(coords.shape) if isinstance(coords, torch.Tensor) else type(coords).__name__
        raise ValueError(
            f"sparse_collate item {position}: coords must be (N, 3) as (x, y, z) or (N, 4) "
            f"as (batch, x, y, z); got {shape}"
        )
    if coords.is_floating_point() or not isinstance(feats, torch.Tensor):
        raise TypeError(
            f"sparse_collate item {position}: coords must be integer and feats a float tensor; "
            f"got coords {coords.dtype}, feats {type(feats).__name__}"
        )
    if coords.shape[1] == 4:
        if coords.shape[0] and bool((coords[:, 0] != coords[0, 0]).any()):
            raise ValueError(
                f"sparse_collate item {position} holds several batch items; collate single "
                "samples (one batch index each)"
            )
        coords = coords[:, 1:]
    if feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
        raise ValueError(
            f"sparse_collate item {position}: feats must be (N, C) with one row per "
            f"coordinate; coords has {coords.shape[0]} rows, feats has shape "
            f"{tuple(feats.shape)}"
        )
    return coords, feats, stride


def sparse_collate(items: Sequence[Any]) -> SparseTensor:
    """One batched ``SparseTensor`` from B samples, batch column set to ``0..B-1``.

    Args:
        items: ``SparseTensor`` (one batch item each) or ``(coords, feats)`` pairs with
            coords ``(N, 3)``/``(N, 4)`` integer and feats ``(N, C)`` float; all one stride.

    Raises:
        TypeError / ValueError: empty list, a bad item (named by position), mixed strides or
            channel counts, duplicate coordinates within an item.
    """
    if isinstance(items, SparseTensor) or len(items) == 0:
        raise ValueError("sparse_collate needs a non-empty list of samples; got none")
    parts = [_item_parts(item, i) for i, item in enumerate(items)]
    strides = {as_triple(stride, "stride") for _, _, stride in parts}
    if len(strides) != 1:
        raise ValueError(f"sparse_collate samples must share one stride; got {sorted(strides)}")
    channels = {tuple(feats.shape[1:]) for _, feats, _ in parts}
    if len(channels) != 1:
        raise ValueError(
            f"sparse_collate samples must share one channel count; got {sorted(channels)}"
        )
    coords = torch.cat([
        torch.cat([torch.full((len(c), 1), b, dtype=torch.int32), c.to(torch.int32)], dim=1)
        for b, (c, _, _) in enumerate(parts)
    ])
    feats = torch.cat([f for _, f, _ in parts])
    return SparseTensor(feats, coords, strides.pop())
