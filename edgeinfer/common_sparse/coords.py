"""Integer coordinates with a batch column: validation, int64 keys, unique, quantisation.

Coordinates are an integer tensor ``(N, 1 + D)`` laid out as ``(batch, x[, y[, z]])`` with
``D`` in {1, 2, 3}. A coordinate packs into one non-negative int64 key with a *fixed* layout
per ``D`` (``KeyLayout``): the batch takes the top ``BATCH_BITS`` bits and each spatial axis a
field of ``(63 - BATCH_BITS) // D`` bits holding ``x + bias`` (``bias = 2**(bits - 1)``).

Because the layout depends only on ``D`` (never on the data), keys of two different
coordinate sets are directly comparable, and key order is lexicographic order of
``(batch, x, y, z)``. A coordinate outside the layout's range has no key: ``pack_coords``
raises for it, and lookups (``CoordTable.query``) report it "not found" without packing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "BATCH_BITS",
    "KeyLayout",
    "coords_in_range",
    "key_layout",
    "offset_keys",
    "pack_coords",
    "quantize_points",
    "unique_coords",
    "unpack_coords",
    "validate_coords",
]

BATCH_BITS = 15
_KEY_BITS = 63  # keys stay non-negative in int64
_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


@dataclass(frozen=True)
class KeyLayout:
    """Bit layout of packed keys for ``ndim`` spatial dimensions.

    Spatial values must lie in ``[spatial_min, spatial_max]``, batch in ``[0, batch_max]``.
    """

    ndim: int

    def __post_init__(self) -> None:
        if self.ndim not in (1, 2, 3):
            raise ValueError(
                f"KeyLayout.ndim must be 1, 2 or 3 spatial dimensions; got {self.ndim!r}"
            )

    @property
    def spatial_bits(self) -> int:
        return (_KEY_BITS - BATCH_BITS) // self.ndim

    @property
    def spatial_min(self) -> int:
        return -(1 << (self.spatial_bits - 1))

    @property
    def spatial_max(self) -> int:
        return (1 << (self.spatial_bits - 1)) - 1

    @property
    def batch_max(self) -> int:
        return (1 << BATCH_BITS) - 1

    def shifts(self) -> list[int]:
        """Left shift of each column ``(batch, x, ...)`` in the key."""
        bits = self.spatial_bits
        return [self.ndim * bits] + [(self.ndim - 1 - j) * bits for j in range(self.ndim)]

    def lower(self) -> torch.Tensor:
        """Per-column minimum ``(1 + D,)`` int64."""
        return torch.tensor([0] + [self.spatial_min] * self.ndim, dtype=torch.int64)

    def upper(self) -> torch.Tensor:
        """Per-column maximum ``(1 + D,)`` int64."""
        return torch.tensor([self.batch_max] + [self.spatial_max] * self.ndim, dtype=torch.int64)


def key_layout(ndim: int) -> KeyLayout:
    """The fixed ``KeyLayout`` for ``ndim`` spatial dimensions (1, 2 or 3)."""
    return KeyLayout(ndim)


def validate_coords(coords: Any, name: str = "coords") -> torch.Tensor:
    """Check ``coords`` is an integer ``(N, 1 + D)`` tensor/array; return it as int64 torch.

    Raises:
        TypeError: not a torch tensor / numpy array, or not an integer dtype.
        ValueError: not 2-D with 2, 3 or 4 columns.
    """
    if isinstance(coords, np.ndarray):
        coords = torch.from_numpy(coords)
    if not isinstance(coords, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy array of integers; got {type(coords).__name__}"
        )
    if coords.dtype not in _INT_DTYPES:
        raise TypeError(
            f"{name} must be an integer tensor of shape (N, 1+D) as (batch, x[, y[, z]]); "
            f"got {coords.dtype} of shape {tuple(coords.shape)} (round or floor floats first, "
            "e.g. with quantize_points)"
        )
    if coords.dim() != 2 or coords.shape[1] not in (2, 3, 4):
        raise ValueError(
            f"{name} must have shape (N, 1+D) with D in 1..3 as (batch, x[, y[, z]]); "
            f"got shape {tuple(coords.shape)}"
        )
    return coords.to(torch.int64)


def coords_in_range(coords: torch.Tensor) -> torch.Tensor:
    """Boolean ``(N,)`` mask of rows of int64 ``coords (N, 1+D)`` that the key layout can hold."""
    layout = key_layout(coords.shape[1] - 1)
    return ((coords >= layout.lower()) & (coords <= layout.upper())).all(dim=1)


def _check_range(coords: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Raise if a column of int64 ``coords`` leaves the key layout; return the per-column
    ``(low, high)`` it found (zeros for an empty set)."""
    if coords.shape[0] == 0:
        zeros = torch.zeros(coords.shape[1], dtype=torch.int64)
        return zeros, zeros
    layout = key_layout(coords.shape[1] - 1)
    low, high = torch.aminmax(coords, dim=0)
    columns = ["batch", "x", "y", "z"][: coords.shape[1]]
    for j, column in enumerate(columns):
        lo, hi = int(layout.lower()[j]), int(layout.upper()[j])
        if int(low[j]) < lo or int(high[j]) > hi:
            raise ValueError(
                f"{name} column {column!r} spans [{int(low[j])}, {int(high[j])}] but the int64 "
                f"key packing for D={layout.ndim} holds only [{lo}, {hi}]; shift the scene "
                "towards the origin, use a coarser voxel size, or split the batch"
            )
    return low, high


def pack_coords(coords: Any, name: str = "coords") -> torch.Tensor:
    """Pack integer ``coords (N, 1+D)`` into int64 keys ``(N,)`` (lexicographic order kept).

    Raises:
        TypeError / ValueError: see ``validate_coords``.
        ValueError: a column lies outside the layout's range (never wraps around).
    """
    coords = validate_coords(coords, name)
    _check_range(coords, name)
    return _pack_unchecked(coords)


def _pack_unchecked(coords: torch.Tensor) -> torch.Tensor:
    """Keys of in-range int64 coords ``(N, 1+D)`` -> ``(N,)``; no checks."""
    layout = key_layout(coords.shape[1] - 1)
    shifted = coords - layout.lower()  # every column now >= 0
    keys = torch.zeros(coords.shape[0], dtype=torch.int64)
    for j, shift in enumerate(layout.shifts()):
        keys |= shifted[:, j] << shift
    return keys


def offset_keys(steps: torch.Tensor) -> torch.Tensor:
    """Signed key deltas ``(K,)`` of spatial steps ``(K, D)`` int64.

    ``pack(c) + offset_keys(d) == pack(c + d)`` exactly whenever ``c`` and ``c + d`` are both
    inside the layout (packing is linear); outside it the sum may alias, so check first with
    ``coords_in_range`` or a bounding box.
    """
    layout = key_layout(steps.shape[1])
    delta = torch.zeros(steps.shape[0], dtype=torch.int64)
    for j, shift in enumerate(layout.shifts()[1:]):
        delta += steps[:, j].to(torch.int64) * (1 << shift)
    return delta


def unpack_coords(keys: torch.Tensor, ndim: int) -> torch.Tensor:
    """Inverse of ``pack_coords``: int64 ``keys (N,)`` -> int64 coords ``(N, 1+ndim)``.

    Raises:
        TypeError: ``keys`` is not an int64 tensor.
        ValueError: ``keys`` is not 1-D or holds negative values.
    """
    layout = key_layout(ndim)
    if not isinstance(keys, torch.Tensor) or keys.dtype != torch.int64:
        got = keys.dtype if isinstance(keys, torch.Tensor) else type(keys).__name__
        raise TypeError(f"keys must be an int64 torch.Tensor from pack_coords; got {got}")
    if keys.dim() != 1:
        raise ValueError(f"keys must be 1-D (N,); got shape {tuple(keys.shape)}")
    if keys.numel() and int(keys.min()) < 0:
        raise ValueError("keys must be non-negative (as pack_coords makes them); got a negative")
    widths = [BATCH_BITS] + [layout.spatial_bits] * ndim
    columns = [
        (keys >> shift) & ((1 << width) - 1)
        for shift, width in zip(layout.shifts(), widths, strict=True)
    ]
    return torch.stack(columns, dim=1) + layout.lower()


def unique_coords(coords: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique rows of ``coords (N, 1+D)`` in lexicographic ``(batch, x, ...)`` order.

    Returns ``(unique (M, 1+D) int64, inverse (N,) int64)`` with ``unique[inverse] == coords``.

    Raises:
        TypeError / ValueError: as ``pack_coords``.
    """
    coords = validate_coords(coords)
    keys = pack_coords(coords)
    unique_keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    return unpack_coords(unique_keys, coords.shape[1] - 1), inverse


def quantize_points(points: Any, voxel_size: float | tuple[float, ...]) -> torch.Tensor:
    """Voxel coordinates ``floor(points / voxel_size)`` of float ``points (N, D)`` as int64.

    ``voxel_size`` is a positive number or one per axis. The result has no batch column and
    may hold duplicates (see ``unique_coords``).

    Raises:
        TypeError: ``points`` is not floating point.
        ValueError: bad shape, non-positive voxel size, or non-finite points / int64 overflow.
    """
    if isinstance(points, np.ndarray):
        points = torch.from_numpy(points)
    if not isinstance(points, torch.Tensor) or not points.is_floating_point():
        got = points.dtype if isinstance(points, torch.Tensor) else type(points).__name__
        raise TypeError(f"points must be a floating tensor/array of shape (N, D); got {got}")
    if points.dim() != 2 or points.shape[1] not in (1, 2, 3):
        raise ValueError(f"points must have shape (N, D) with D in 1..3; got {tuple(points.shape)}")
    sizes = torch.as_tensor(voxel_size, dtype=torch.float64).reshape(-1)
    if sizes.numel() not in (1, points.shape[1]) or bool((sizes <= 0).any()):
        raise ValueError(
            f"voxel_size must be one positive number or {points.shape[1]} of them; "
            f"got {voxel_size!r}"
        )
    scaled = torch.floor(points.to(torch.float64) / sizes)
    if scaled.numel() and not bool(scaled.abs().max() < 2.0**62):
        raise ValueError(
            "points / voxel_size must be finite and below 2**62 in magnitude to become int64 "
            "voxel coordinates; check for NaN/inf points or a tiny voxel_size"
        )
    return scaled.to(torch.int64)
