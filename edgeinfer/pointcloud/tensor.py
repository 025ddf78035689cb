"""``SparseTensor``: active voxel coordinates ``(batch, x, y, z)``, feature rows, a stride.

Coordinates stay at the input scale (TorchSparse style): a tensor of stride ``s`` has spatial
coordinates that are multiples of ``s``. Every tensor carries a ``SparseCache`` shared by all
tensors derived from it (``replace``, convolution outputs): it holds the kernel maps, keyed by
``KernelMapKey``, and the coordinate set of every stride reached so far, so a transposed
convolution finds the finer sites it maps back to. There is no module-level state.

Duplicates: the coordinates of a ``SparseTensor`` must be unique (one feature row per site).
Construction rejects duplicates; merge them first with ``sparse_quantize`` (and reduce the
features of each voxel, e.g. with ``functional.voxelize``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..common_sparse import KernelMapCache, as_int_tuple, pack_coords

__all__ = ["SparseCache", "SparseTensor", "as_triple"]

Triple = tuple[int, int, int]
_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def as_triple(value: Any, name: str, minimum: int = 1) -> Triple:
    """``value`` (an int or 3 ints, each ``>= minimum``) as a tuple of 3 python ints.

    Raises:
        ValueError: not an int or a sequence of 3 ints, or an entry below ``minimum``.
    """
    x, y, z = as_int_tuple(value, 3, name, minimum)
    return (x, y, z)


class SparseCache:
    """What all tensors derived from one input share: kernel maps and coordinates per stride.

    ``kernel_maps`` is a ``KernelMapCache`` (keys are ``KernelMapKey``); coordinate sets are
    int32 ``(N, 4)`` tensors keyed by the stride ``(sx, sy, sz)`` they were made at.
    """

    def __init__(self) -> None:
        self.kernel_maps = KernelMapCache()
        self._coords: dict[Triple, torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"SparseCache(strides={sorted(self._coords)}, kernel_maps={len(self.kernel_maps)})"

    def strides(self) -> list[Triple]:
        """The strides whose coordinate sets are known, sorted."""
        return sorted(self._coords)

    def coords_at(self, stride: Triple) -> torch.Tensor | None:
        """The int32 ``(N, 4)`` coordinates at ``stride``, or ``None`` if never reached."""
        return self._coords.get(as_triple(stride, "stride"))

    def put_coords(self, stride: Triple, coords: torch.Tensor) -> torch.Tensor:
        """Store ``coords`` for ``stride`` unless present; return the stored set.

        The first set stored for a stride wins: every later producer of that stride computes
        the same set in the same (sorted) order, so outputs keep one row order per stride.
        """
        return self._coords.setdefault(as_triple(stride, "stride"), coords)


def _check_coords(coords: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(int32 coords (N, 4), their int64 keys (N,))``, range-checked before the cast."""
    if isinstance(coords, np.ndarray):
        coords = torch.from_numpy(coords)
    if not isinstance(coords, torch.Tensor):
        raise TypeError(
            "coords must be an integer torch.Tensor or numpy array of shape (N, 4) as "
            f"(batch, x, y, z); got {type(coords).__name__}"
        )
    if coords.dtype not in _INT_DTYPES or coords.dim() != 2 or coords.shape[1] != 4:
        raise ValueError(
            "coords must be an integer tensor of shape (N, 4) as (batch, x, y, z); got "
            f"{coords.dtype} of shape {tuple(coords.shape)}. Quantise float points with "
            "sparse_quantize and add the batch column (or use sparse_collate)"
        )
    # the packable range (about +-2**15 per axis) is checked on the values as given, before
    # the cast to int32 could wrap an int64 coordinate onto a valid one (2**32 + 5 -> 5)
    if coords.shape[0] and int(coords[:, 0].min()) < 0:
        raise ValueError(
            f"coords batch column must be >= 0; got {int(coords[:, 0].min())}. "
            "Batch indices run 0..B-1 (sparse_collate sets them)"
        )
    keys = pack_coords(coords.to(torch.int64), "coords")
    return coords.to(torch.int32), keys


def _check_feats(feats: Any, rows: int) -> torch.Tensor:
    if isinstance(feats, np.ndarray):
        feats = torch.from_numpy(feats)
    if not isinstance(feats, torch.Tensor) or not feats.is_floating_point() or feats.dim() != 2:
        got = (
            f"{feats.dtype} of shape {tuple(feats.shape)}"
            if isinstance(feats, torch.Tensor) else type(feats).__name__
        )
        raise TypeError(f"feats must be a floating tensor of shape (N, C); got {got}")
    if feats.shape[0] != rows:
        raise ValueError(
            f"feats must have one row per coordinate: coords has {rows} rows, feats has "
            f"{feats.shape[0]} (shape {tuple(feats.shape)})"
        )
    return feats


def _check_unique_and_aligned(coords: torch.Tensor, keys: torch.Tensor, stride: Triple) -> None:
    """Reject duplicate rows and coordinates that are not multiples of ``stride``."""
    if coords.shape[0] == 0:
        return
    if stride != (1, 1, 1):
        off = (coords[:, 1:] % torch.tensor(stride, dtype=torch.int32)).ne(0).any(dim=1)
        if bool(off.any()):
            row = int(torch.nonzero(off)[0])
            raise ValueError(
                f"coords of a tensor with stride {stride} must be multiples of it; row {row} "
                f"is {coords[row].tolist()}. Pass the stride the coordinates were made at"
            )
    keys = torch.sort(keys).values
    repeated = keys[1:] == keys[:-1]
    if bool(repeated.any()):
        raise ValueError(
            f"coords must be unique (one feature row per site); {int(repeated.sum())} rows "
            "repeat an earlier coordinate. Merge duplicates with sparse_quantize (its inverse "
            "index reduces their features, e.g. functional.voxelize)"
        )


class SparseTensor:
    """Sparse voxels: ``feats (N, C)`` float, ``coords (N, 4)`` int32 ``(batch, x, y, z)``.

    Args:
        feats: ``(N, C)`` floating tensor (or numpy array), one row per coordinate.
        coords: ``(N, 4)`` integer coordinates, unique rows, spatial values multiples of
            ``stride``; negative spatial values are fine, the batch column is ``>= 0``.
        stride: tensor stride, an int or ``(sx, sy, sz)``.

    Immutable in spirit: derive new tensors with ``replace``; they share coords and cache.

    Raises:
        TypeError: coords not integer / feats not floating.
        ValueError: wrong shapes, row-count mismatch, duplicates, coords off the stride grid,
            coordinates outside the packable range (about +-2**15 per axis, checked before
            any cast), NaN/inf feats.
    """

    __slots__ = ("_cache", "_coords", "_feats", "_stride")

    def __init__(self, feats: Any, coords: Any, stride: int | Triple = 1) -> None:
        stride_t = as_triple(stride, "stride")
        coords_t, keys = _check_coords(coords)
        feats_t = _check_feats(feats, coords_t.shape[0])
        if not bool(torch.isfinite(feats_t.detach()).all()):
            bad = int((~torch.isfinite(feats_t.detach())).any(dim=1).sum())
            raise ValueError(
                f"feats must be finite; {bad} of {len(feats_t)} rows hold NaN or inf. Drop or "
                "repair those points before building the tensor"
            )
        _check_unique_and_aligned(coords_t, keys, stride_t)
        cache = SparseCache()
        cache.put_coords(stride_t, coords_t)
        self._set(feats_t, coords_t, stride_t, cache)

    def _set(self, feats: torch.Tensor, coords: torch.Tensor, stride: Triple,
             cache: SparseCache) -> None:
        self._feats, self._coords, self._stride, self._cache = feats, coords, stride, cache

    @classmethod
    def derived(cls, feats: torch.Tensor, coords: torch.Tensor, stride: Triple,
                cache: SparseCache) -> SparseTensor:
        """A tensor on coordinates already validated and held by ``cache`` (no checks).

        For library code (convolution outputs); users build tensors with the constructor.
        """
        assert cache.coords_at(stride) is coords, "derived coords must be the cached set"
        tensor = cls.__new__(cls)
        tensor._set(feats, coords, stride, cache)
        return tensor

    @property
    def feats(self) -> torch.Tensor:
        """``(N, C)`` floating features."""
        return self._feats

    @property
    def coords(self) -> torch.Tensor:
        """``(N, 4)`` int32 coordinates ``(batch, x, y, z)``."""
        return self._coords

    @property
    def stride(self) -> Triple:
        """Tensor stride ``(sx, sy, sz)``."""
        return self._stride

    @property
    def cache(self) -> SparseCache:
        """Kernel maps and coordinate sets shared with every tensor derived from this one."""
        return self._cache

    @property
    def batch_size(self) -> int:
        """``max(batch) + 1``, or 0 for an empty tensor."""
        return int(self._coords[:, 0].max()) + 1 if self._coords.shape[0] else 0

    def __len__(self) -> int:
        return int(self._coords.shape[0])

    def __repr__(self) -> str:
        return (
            f"SparseTensor(sites={len(self)}, channels={self._feats.shape[1]}, "
            f"stride={self._stride}, batch_size={self.batch_size}, dtype={self._feats.dtype})"
        )

    def replace(self, *, feats: Any) -> SparseTensor:
        """A tensor with new ``feats (N, C')`` on the same coords, stride and cache.

        Raises:
            TypeError / ValueError: ``feats`` is not floating ``(N, C')`` with N = len(self).
        """
        return SparseTensor.derived(
            _check_feats(feats, len(self)), self._coords, self._stride, self._cache
        )
