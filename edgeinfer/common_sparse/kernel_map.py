"""Kernel maps: for every kernel offset, the (input row, output row) pairs of a sparse conv.

Conventions (the same as dense ``torch.nn.functional.convNd``, a cross-correlation):

- Offsets per axis: odd ``k`` -> ``-(k//2) .. k//2`` (centred), even ``k`` -> ``0 .. k-1``.
  Offsets are enumerated lexicographically (last axis fastest), so offset ``j`` of a
  ``(k, k, k)`` kernel is the dense weight element ``w[:, :, a, b, c]`` flattened row-major.
- A *step* is ``offset * dilation * tensor_stride``: coordinates keep the input scale
  (TorchSparse style), so sites of a tensor with stride 4 are multiples of 4.
- Output site ``q`` sees, for offset ``d``, the input site at ``q + step(d)`` (if active) and
  the pair is ``(in_row, out_row)``: ``y[q] = sum_d x[q + step(d)] @ W_d``.

Sub-manifold maps keep the output sites equal to the input sites. Strided maps put outputs at
``unique(floor(c / s_out) * s_out)`` with ``s_out = stride * tensor_stride``; output ``q`` then
sees inputs ``q + step(d)``, which for ``k=2, stride=2`` tiles the input exactly. Every input
must reach its own output ``floor(c / s_out) * s_out``; kernel/stride/dilation combinations
that would drop input sites are rejected. Transposed maps swap the rows of a strided map.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .coords import unique_coords, validate_coords
from .hashing import DEFAULT_MAX_GRID_CELLS, CoordTable, lookup_pairs

__all__ = [
    "KernelMap",
    "as_int_tuple",
    "build_strided_map",
    "build_submanifold_map",
    "kernel_offsets",
    "transpose_kernel_map",
]

IntOrTuple = int | tuple[int, ...]


def as_int_tuple(value: Any, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int, or ``ndim`` ints, each ``>= minimum``) as a tuple of python ints.

    numpy integers count as ints; bools do not.

    Raises:
        ValueError: not an int or a sequence of ``ndim`` ints, or an entry below ``minimum``.
    """
    items = (value,) * ndim if isinstance(value, int | np.integer) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    valid = len(items) == ndim and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum
        for v in items
    )
    if not valid:
        raise ValueError(
            f"{name} must be an int >= {minimum} or a tuple of {ndim} such ints "
            f"(one per spatial axis); got {value!r}"
        )
    return tuple(int(v) for v in items)


def _axis_offsets(size: int) -> range:
    """Offsets along one axis: centred for odd ``size``, ``0 .. size-1`` for even."""
    return range(-(size // 2), size // 2 + 1) if size % 2 else range(size)


def kernel_offsets(kernel_size: IntOrTuple, ndim: int) -> torch.Tensor:
    """Kernel offsets ``(K, D)`` int64 in lexicographic order (see module docstring).

    Raises:
        ValueError: ``kernel_size`` is not a positive int or a tuple of ``ndim`` of them.
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3 spatial dimensions; got {ndim!r}")
    sizes = as_int_tuple(kernel_size, ndim, "kernel_size", 1)
    axes = [_axis_offsets(k) for k in sizes]
    return torch.tensor(list(itertools.product(*axes)), dtype=torch.int64).reshape(-1, ndim)


@dataclass(frozen=True, eq=False)
class KernelMap:
    """Per-offset ``(in_rows, out_rows)`` int64 pairs of a sparse convolution.

    Attributes:
        in_rows / out_rows: tuples of K int64 tensors ``(P_k,)``; within an offset every
            output row appears at most once (so scatter-adds of one offset never collide).
        offsets: ``(K, D)`` int64 kernel offsets (units of the kernel, before dilation/stride).
        n_in / n_out: number of input / output sites.
        transposed: True for a map made by ``transpose_kernel_map``.
        derived: a dict where code using the map keeps what it derives from the pairs once
            (e.g. ``sparse_conv``'s output-row blocks); the pairs themselves never change.
    """

    in_rows: tuple[torch.Tensor, ...]
    out_rows: tuple[torch.Tensor, ...]
    offsets: torch.Tensor
    n_in: int
    n_out: int
    transposed: bool = False
    # derived data computed once per map by its users (e.g. the conv's output-row blocks)
    derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        volume = self.offsets.shape[0] if self.offsets.dim() == 2 else -1
        if len(self.in_rows) != volume or len(self.out_rows) != volume:
            raise ValueError(
                "KernelMap needs one (in_rows, out_rows) pair per offset: offsets "
                f"{tuple(self.offsets.shape)}, "
                f"{len(self.in_rows)} in_rows, {len(self.out_rows)} out_rows"
            )
        if self.n_in < 0 or self.n_out < 0:
            raise ValueError(
                f"KernelMap sizes must be >= 0; got n_in={self.n_in}, n_out={self.n_out}"
            )
        for k, (rows_in, rows_out) in enumerate(zip(self.in_rows, self.out_rows, strict=True)):
            if rows_in.dtype != torch.int64 or rows_out.dtype != torch.int64:
                raise TypeError(
                    f"KernelMap rows must be int64; offset {k} has "
                    f"{rows_in.dtype}/{rows_out.dtype}"
                )
            if rows_in.shape != rows_out.shape or rows_in.dim() != 1:
                raise ValueError(
                    f"KernelMap offset {k}: in_rows {tuple(rows_in.shape)} and out_rows "
                    f"{tuple(rows_out.shape)} must be 1-D of equal length"
                )

    def __repr__(self) -> str:
        return (
            f"KernelMap(K={self.volume}, n_in={self.n_in}, n_out={self.n_out}, "
            f"pairs={sum(self.pair_counts())}, transposed={self.transposed})"
        )

    @property
    def volume(self) -> int:
        """Number of kernel offsets K."""
        return int(self.offsets.shape[0])

    def pair_counts(self) -> list[int]:
        """Number of pairs per offset, ``[P_0, ..., P_{K-1}]``."""
        return [int(rows.numel()) for rows in self.in_rows]

    def to_scipy(self) -> list[Any]:
        """Selection matrices ``S_k`` (scipy CSR, ``n_out x n_in``, float32 ones).

        ``y = sum_k S_k @ X @ W_k`` reproduces ``sparse_conv(X, W, self, n_out)``.
        """
        import numpy as np
        import scipy.sparse

        matrices = []
        for rows_in, rows_out in zip(self.in_rows, self.out_rows, strict=True):
            ones = np.ones(rows_in.numel(), dtype=np.float32)
            matrices.append(
                scipy.sparse.csr_matrix(
                    (ones, (rows_out.numpy(), rows_in.numpy())), shape=(self.n_out, self.n_in)
                )
            )
        return matrices


def _steps(offsets: torch.Tensor, dilation: tuple[int, ...], tensor_stride: tuple[int, ...]):
    return offsets * torch.tensor(dilation) * torch.tensor(tensor_stride)


def _check_stride_multiple(coords: torch.Tensor, tensor_stride: tuple[int, ...]) -> None:
    if coords.shape[0] == 0 or all(s == 1 for s in tensor_stride):
        return
    bad = (coords[:, 1:] % torch.tensor(tensor_stride)).ne(0).any(dim=1)
    if bool(bad.any()):
        row = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"coords of a tensor with tensor_stride {tensor_stride} must be multiples of it; "
            f"row {row} is {coords[row].tolist()}. Pass the stride the coordinates were made at"
        )


def build_submanifold_map(
    coords: Any,
    kernel_size: IntOrTuple,
    *,
    dilation: IntOrTuple = 1,
    tensor_stride: IntOrTuple = 1,
    max_grid_cells: int = DEFAULT_MAX_GRID_CELLS,
) -> KernelMap:
    """Kernel map whose output sites are the input sites ``coords (N, 1+D)`` (same rows).

    For odd (centred) kernels only half the offsets are searched: if ``(i -> o)`` is a pair of
    offset ``d`` then ``(o -> i)`` is the pair of ``-d``. Cost: ``O(N log N + K/2 * N)`` with
    the direct-address grid (box <= ``max_grid_cells``), else one sorted-key search per
    column of offsets (``hashing.lookup_pairs``). Pairs come in no particular order.

    Raises:
        TypeError / ValueError: bad coords, duplicate coords, bad sizes, coords not multiples
            of ``tensor_stride``.
    """
    coords = validate_coords(coords)
    ndim = coords.shape[1] - 1
    offsets = kernel_offsets(kernel_size, ndim)
    dil = as_int_tuple(dilation, ndim, "dilation", 1)
    stride_in = as_int_tuple(tensor_stride, ndim, "tensor_stride", 1)
    _check_stride_multiple(coords, stride_in)
    table = CoordTable.build(coords)
    n, volume = coords.shape[0], offsets.shape[0]
    centred = bool(torch.equal(offsets, -offsets.flip(0)))
    searched = volume // 2 if centred else volume
    steps = _steps(offsets[:searched], dil, stride_in)
    found = lookup_pairs(table, coords, coords, steps, max_grid_cells, spacing=stride_in[-1])
    in_rows: list[torch.Tensor] = [torch.empty(0, dtype=torch.int64)] * volume
    out_rows: list[torch.Tensor] = [torch.empty(0, dtype=torch.int64)] * volume
    for k, pair in enumerate(found):
        in_rows[k], out_rows[k] = pair
        if centred:  # mirror offset -d: swap the roles of the pair
            in_rows[volume - 1 - k], out_rows[volume - 1 - k] = out_rows[k], in_rows[k]
    if centred:
        in_rows[searched] = out_rows[searched] = torch.arange(n, dtype=torch.int64)
    return KernelMap(tuple(in_rows), tuple(out_rows), offsets, n, n)


def _check_coverage(sizes, stride, dil, offsets_per_axis) -> None:
    for axis, (k, s, d) in enumerate(zip(sizes, stride, dil, strict=True)):
        reach = {o * d for o in offsets_per_axis[axis]}
        if not set(range(s)) <= reach:
            raise ValueError(
                f"a strided map with kernel_size {k}, stride {s}, dilation {d} on axis {axis} "
                f"cannot reach input offsets {sorted(set(range(s)) - reach)} inside each "
                "stride cell, so those input sites would be dropped; use kernel_size >= stride "
                "(odd k: k//2 >= stride-1) and dilation 1"
            )


def build_strided_map(
    coords: Any,
    kernel_size: IntOrTuple,
    stride: IntOrTuple,
    *,
    dilation: IntOrTuple = 1,
    tensor_stride: IntOrTuple = 1,
    max_grid_cells: int = DEFAULT_MAX_GRID_CELLS,
) -> tuple[KernelMap, torch.Tensor]:
    """Downsampling map from ``coords (N, 1+D)`` to ``unique(floor(c / s_out) * s_out)``.

    ``s_out = stride * tensor_stride`` per axis; the batch column is kept. Output ``q`` sees
    input ``q + offset * dilation * tensor_stride`` for every kernel offset.
    ``max_grid_cells`` bounds the direct-address lookup grid (0: sorted keys only). A kernel
    that tiles its stride (``kernel_size == stride``, even or 1, dilation 1: the usual k2s2
    downsampling) needs no lookup at all: each input meets one output through one offset.

    Returns ``(kernel_map, out_coords (M, 1+D) int64)``, ``out_coords`` in lexicographic order.

    Raises:
        TypeError / ValueError: bad coords or sizes; a combination that would drop input sites.
    """
    coords = validate_coords(coords)
    ndim = coords.shape[1] - 1
    sizes = as_int_tuple(kernel_size, ndim, "kernel_size", 1)
    step = as_int_tuple(stride, ndim, "stride", 1)
    dil = as_int_tuple(dilation, ndim, "dilation", 1)
    stride_in = as_int_tuple(tensor_stride, ndim, "tensor_stride", 1)
    _check_coverage(sizes, step, dil, [_axis_offsets(k) for k in sizes])
    _check_stride_multiple(coords, stride_in)
    s_out = torch.tensor([1, *(s * t for s, t in zip(step, stride_in, strict=True))])
    out_coords, inverse = unique_coords(torch.div(coords, s_out, rounding_mode="floor") * s_out)
    offsets = kernel_offsets(sizes, ndim)
    if all(d == 1 and k == s and (k % 2 == 0 or k == 1)
           for k, s, d in zip(sizes, step, dil, strict=True)):
        pairs = _tiling_pairs(coords, inverse, sizes, stride_in, out_coords.shape[0])
    else:
        pairs = lookup_pairs(CoordTable.build(coords), coords, out_coords,
                             _steps(offsets, dil, stride_in), max_grid_cells,
                             spacing=stride_in[-1])
    kernel_map = KernelMap(
        tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), offsets,
        coords.shape[0], out_coords.shape[0],
    )
    return kernel_map, out_coords


def _tiling_pairs(
    coords: torch.Tensor, inverse: torch.Tensor, sizes: tuple[int, ...],
    stride_in: tuple[int, ...], n_out: int,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs of a kernel that tiles its stride (``k == stride``, offsets ``0 .. k-1``).

    Input ``c`` then meets exactly one output, ``inverse[c]``, through exactly one offset,
    ``(c / tensor_stride) mod k`` per axis: no lookups. Two inputs with the same output and
    offset are the same coordinate, which ``CoordTable.build`` reports.
    """
    volume = 1
    offset_index = torch.zeros(coords.shape[0], dtype=torch.int64)  # (N,) lexicographic
    for axis, (k, t) in enumerate(zip(sizes, stride_in, strict=True)):
        offset_index.mul_(k).add_(torch.div(coords[:, 1 + axis], t, rounding_mode="floor")
                                  .remainder_(k))
        volume *= k
    slots = torch.bincount(inverse * volume + offset_index, minlength=n_out * volume)
    if slots.numel() and int(slots.max()) > 1:
        CoordTable.build(coords)  # raises the duplicate-coordinate error
    # inputs grouped by offset, ascending within each: a stable sort of the offset indices
    # (numpy's is a radix sort for 8- and 16-bit keys: one pass, unlike a compare per offset)
    key = np.uint8 if volume <= 1 << 8 else np.uint16 if volume <= 1 << 16 else np.int64
    order = torch.from_numpy(np.argsort(offset_index.numpy().astype(key), kind="stable"))
    counts = torch.bincount(offset_index, minlength=volume).tolist()
    return [(in_rows, inverse.index_select(0, in_rows))
            for in_rows in torch.split(order, counts)]


def transpose_kernel_map(kernel_map: KernelMap) -> KernelMap:
    """The transpose of ``kernel_map``: in/out rows and sizes swapped (upsampling).

    Raises:
        TypeError: ``kernel_map`` is not a ``KernelMap``.
    """
    if not isinstance(kernel_map, KernelMap):
        raise TypeError(f"transpose_kernel_map needs a KernelMap; got {type(kernel_map).__name__}")
    return KernelMap(
        kernel_map.out_rows, kernel_map.in_rows, kernel_map.offsets,
        kernel_map.n_out, kernel_map.n_in, not kernel_map.transposed,
    )
