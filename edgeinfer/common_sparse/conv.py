"""Sparse convolution over a kernel map: the torch path (gather -> GEMM -> scatter-add), and
the choice of backend (``sparse_conv`` runs ``fused.fused_conv`` where it can: see
:func:`resolve_backend`).

For offset ``k`` with pairs ``(in_rows, out_rows)``: ``y[out_rows] += x[in_rows] @ W_k``.
Offsets with similar pair counts can be stacked (padded to the largest count) and multiplied
with one ``torch.bmm`` so the CPU GEMM sees larger problems (``ConvPlan``); an identity offset
(the centre of a sub-manifold map) is one plain ``x @ W_k`` without gather or scatter, and
starts the output (no zero fill).

The other offsets' products are summed per output row by ``torch``'s ``embedding_bag``
(mode ``"sum"``): output rows are cut into blocks of about ``BATCH_BYTES`` of products; a block's
products ``x[in_rows] @ W_k`` are written offset by offset into one buffer (without autograd,
by gathers of ``CHUNK_ROWS`` rows per torch thread and one GEMM each), and each output row's
bag of products is summed in plan order and added to the output. The blocks and their bags
are derived once per map and kept on it. The bag sum is one pass over the products with a
vectorised kernel per output row, cheaper than an ``index_add_`` per pair row or the
scipy sparse-times-dense product used before (same-process medians on the 87k-voxel
benchmark scan, sub-manifold 3x3x3 conv with a cached map: 30.3 vs 37.0 ms at 32 channels and
320 vs 357 ms at 128 channels, 1 thread; 24.0 vs 33.0 ms at 32 channels, 2 threads).

Determinism: each output element is ``start + (p_1 + p_2 + ...)``: the start (``initial``,
``bias`` and the identity offsets' products), plus the sum of its other products in the plan's
order (by pair count, ties by offset index), which depends only on the map's pair counts. An
output row's bag is summed by one thread, so the sum is the same on every path (autograd or
not, any chunk and block size, any thread count) and for any input row order (up to the
corresponding permutation of rows).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np
import torch

from .kernel_map import KernelMap

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "BATCH_BYTES",
    "CHUNK_ROWS",
    "ConvPlan",
    "plan_offset_groups",
    "resolve_backend",
    "sparse_conv",
]

CHUNK_ROWS = 4096  # pair rows per torch thread per gather -> GEMM step of the no-grad path
BATCH_BYTES = 16 << 20  # products held at once (one block of output rows), in bytes


@dataclass(frozen=True)
class ConvPlan:
    """How offsets are batched: ``group_ratio`` in (0, 1] is the smallest pair count allowed in
    a group relative to its largest (padding waste <= 1 - ratio); ``max_group`` caps its size.

    The default ``max_group=1`` runs one ``mm`` per offset: on the CPU this was measured on
    (2-core AMD EPYC, torch 2.13, C = 16..32) that beat padded ``bmm`` groups by 10-30 %.
    Raise ``max_group`` (e.g. 32) where small GEMMs are call-overhead bound; results are
    the same to rounding either way (bitwise on the CPU tested).
    """

    group_ratio: float = 0.9
    max_group: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.group_ratio <= 1.0:
            raise ValueError(f"ConvPlan.group_ratio must be in (0, 1]; got {self.group_ratio}")
        if self.max_group < 1:
            raise ValueError(f"ConvPlan.max_group must be >= 1; got {self.max_group}")


def plan_offset_groups(counts: list[int], plan: ConvPlan) -> list[list[int]]:
    """Group offset indices with non-zero ``counts`` by similar size, largest first.

    Deterministic: offsets are ordered by count (descending), then by index.
    """
    order = sorted((k for k, c in enumerate(counts) if c > 0), key=lambda k: (-counts[k], k))
    groups: list[list[int]] = []
    for k in order:
        current = groups[-1] if groups else None
        if (
            current is not None
            and len(current) < plan.max_group
            and counts[k] >= plan.group_ratio * counts[current[0]]
        ):
            current.append(k)
        else:
            groups.append([k])
    return groups


def _check_inputs(feats: torch.Tensor, weight: torch.Tensor, kernel_map: KernelMap, n_out: int):
    if not isinstance(kernel_map, KernelMap):
        raise TypeError(f"kernel_map must be a KernelMap; got {type(kernel_map).__name__}")
    for name, tensor, dims in (("feats", feats, 2), ("weight", weight, 3)):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            got = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise TypeError(f"{name} must be a floating torch.Tensor; got {got}")
        if tensor.dim() != dims:
            shape = "(N_in, C_in)" if dims == 2 else "(K, C_in, C_out)"
            raise ValueError(f"{name} must have shape {shape}; got {tuple(tensor.shape)}")
    if feats.dtype != weight.dtype:
        raise TypeError(
            f"feats and weight must share a dtype; got {feats.dtype} and {weight.dtype}"
        )
    if weight.shape[0] != kernel_map.volume or weight.shape[1] != feats.shape[1]:
        raise ValueError(
            f"weight must have shape (K={kernel_map.volume}, C_in={feats.shape[1]}, C_out); "
            f"got {tuple(weight.shape)}"
        )
    if feats.shape[0] != kernel_map.n_in or n_out != kernel_map.n_out:
        raise ValueError(
            f"the kernel map connects {kernel_map.n_in} input to {kernel_map.n_out} output sites; "
            f"got feats with {feats.shape[0]} rows and n_out={n_out}. Use the map built for "
            "these coordinates"
        )


def _is_identity(kernel_map: KernelMap, k: int) -> bool:
    rows_in, rows_out = kernel_map.in_rows[k], kernel_map.out_rows[k]
    # pairs (r, r) over all rows: out rows are unique per offset, so this is the identity
    return rows_in is rows_out and rows_in.numel() == kernel_map.n_in == kernel_map.n_out


def _group_products(
    feats: torch.Tensor, weight: torch.Tensor, kernel_map: KernelMap, group: list[int]
) -> list[torch.Tensor]:
    """Partial products ``x[in_rows_k] @ W_k`` ``(P_k, C_out)`` for the offsets of ``group``."""
    if len(group) == 1:
        k = group[0]
        return [feats.index_select(0, kernel_map.in_rows[k]) @ weight[k]]
    counts = [kernel_map.in_rows[k].numel() for k in group]
    longest = max(counts)
    rows = [kernel_map.in_rows[k] for k in group]
    index = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (G, P_max), pad -> row 0
    gathered = feats.index_select(0, index.reshape(-1)).reshape(len(group), longest, -1)
    stacked = weight.index_select(0, torch.tensor(group))  # (G, C_in, C_out)
    products = torch.bmm(gathered, stacked)  # (G, P_max, C_out)
    return [products[g, : counts[g]] for g in range(len(group))]


def _check_epilogue(name: str, tensor: torch.Tensor | None, shape: tuple[int, ...],
                    dtype: torch.dtype) -> None:
    if tensor is None:
        return
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != dtype:
        got = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise TypeError(f"{name} must be a torch.Tensor of the features' dtype {dtype}; got {got}")
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(tensor.shape)}")


def _start(feats: torch.Tensor, weight: torch.Tensor, identity: list[int], n_out: int,
           bias: torch.Tensor | None, initial: torch.Tensor | None) -> torch.Tensor:
    """A new ``(n_out, C_out)`` tensor: ``initial + bias`` plus the identity offsets' products
    (one ``addmm``), or ``initial + bias`` / zeros when the map has no identity offset."""
    base = initial if bias is None else (bias if initial is None else initial + bias)
    if identity:
        first = weight[identity[0]]
        out = feats @ first if base is None else torch.addmm(base, feats, first)
        for k in identity[1:]:
            out.add_(feats @ weight[k])
        return out
    if base is None:
        return feats.new_zeros(n_out, weight.shape[2])
    return base.expand(n_out, weight.shape[2]).clone(memory_format=torch.contiguous_format)


BACKENDS = ("auto", "numba", "torch")
BACKEND_ENV = "EDGEINFER_BACKEND"
"""Environment variable choosing the default backend (``auto``, ``numba`` or ``torch``)."""
def resolve_backend(backend: str | None, feats: torch.Tensor, weight: torch.Tensor,
                    needs_grad: bool) -> str:
    """``"numba"`` or ``"torch"``: the backend a convolution runs on.

    ``backend`` (default: ``$EDGEINFER_BACKEND``, else ``"auto"``): ``"torch"`` always the
    gather-GEMM-scatter path; ``"numba"`` the fused kernel (an error without numba);
    ``"auto"`` the fused kernel when numba runs, no gradient is needed, the dtype is float32
    or float64 and ``C_out`` has a tile kernel (a multiple of 8: ``fused.tile_for``), the
    generic kernel being slower than the GEMM path. The fused kernel was faster than the GEMM
    path at every layer of MinkUNet width 0.5 and 1.0 (16 to 384 input, 16 to 256 output
    channels) on the machine this was measured on; ``edgeinfer bench pointcloud`` measures
    both. A gradient always takes the torch path (autograd).

    Raises:
        ValueError: an unknown backend, or ``"numba"`` where numba does not run.
    """
    from .. import _jit

    chosen = backend if backend is not None else os.environ.get(BACKEND_ENV, "auto")
    if chosen not in BACKENDS:
        where = "backend" if backend is not None else f"${BACKEND_ENV}"
        raise ValueError(f"{where} must be one of {list(BACKENDS)}; got {chosen!r}")
    if chosen == "torch" or needs_grad:
        return "torch"
    if chosen == "numba":
        if not _jit.available():
            raise ValueError("backend='numba' needs numba (pip install numba) and "
                             f"${_jit.ENV} unset or 1; use backend='torch' or 'auto'")
        return "numba"
    from .fused import tile_for

    fits = tile_for(int(weight.shape[2])) is not None
    return "numba" if fits and feats.dtype in (torch.float32, torch.float64) \
        and _jit.available() else "torch"


def sparse_conv(
    feats: torch.Tensor,
    weight: torch.Tensor,
    kernel_map: KernelMap,
    n_out: int,
    plan: ConvPlan | None = None,
    *,
    bias: torch.Tensor | None = None,
    initial: torch.Tensor | None = None,
    relu: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """``y = initial + bias + sum_k S_k @ feats @ weight[k]`` over the pairs of ``kernel_map``.

    Args:
        feats: ``(N_in, C_in)`` float features of the input sites.
        weight: ``(K, C_in, C_out)``, ``weight[k]`` for kernel offset ``k`` of the map.
        kernel_map: pairs from ``build_submanifold_map`` / ``build_strided_map`` / transposed.
        n_out: number of output sites (must equal ``kernel_map.n_out``).
        plan: offset batching (``ConvPlan()`` by default); changes speed, not the math.
        bias: optional ``(C_out,)`` added to every output row.
        initial: optional ``(n_out, C_out)`` the convolution is added to (e.g. a residual
            shortcut); it is not modified. ``bias`` or ``initial`` starts the output (the
            identity offset's GEMM adds onto it), so either costs no extra pass over the
            output; both together cost one (``initial + bias``).
        relu: apply ReLU to the result (fused into the numba kernel's last write).
        backend: ``"auto"`` / ``"numba"`` / ``"torch"`` (see :func:`resolve_backend`); both
            compute the same sum (in different rounding orders, each deterministic).

    Returns a new ``(n_out, C_out)`` tensor; output sites without any pair get
    ``initial + bias`` (zero without them). Autograd works.

    Raises:
        TypeError: wrong types or mismatched dtypes.
        ValueError: shapes that do not match each other or the kernel map.
    """
    _check_inputs(feats, weight, kernel_map, n_out)
    _check_epilogue("bias", bias, (weight.shape[2],), feats.dtype)
    _check_epilogue("initial", initial, (n_out, weight.shape[2]), feats.dtype)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (feats, weight, bias, initial))
    if resolve_backend(backend, feats, weight, needs_grad) == "numba":
        from .fused import fused_conv

        out = fused_conv(feats, weight, kernel_map, bias=bias, initial=initial, relu=relu)
        if out is not None:
            return out
    out = _torch_conv(feats, weight, kernel_map, n_out, plan, bias, initial)
    if not relu:
        return out
    return out.relu_() if not needs_grad else torch.relu(out)


def _torch_conv(feats: torch.Tensor, weight: torch.Tensor, kernel_map: KernelMap, n_out: int,
                plan: ConvPlan | None, bias: torch.Tensor | None,
                initial: torch.Tensor | None) -> torch.Tensor:
    plan = plan or ConvPlan()
    identity = [k for k in range(kernel_map.volume) if _is_identity(kernel_map, k)]
    out = _start(feats, weight, identity, n_out, bias, initial)
    counts = [0 if k in identity else c for k, c in enumerate(kernel_map.pair_counts())]
    groups = plan_offset_groups(counts, plan)
    _accumulate(out, feats, weight, kernel_map, groups)
    return out


def _chunk_rows() -> int:
    """Pair rows per gather -> GEMM step: ``CHUNK_ROWS`` per torch thread (small steps do not
    split well over threads)."""
    return CHUNK_ROWS * max(1, torch.get_num_threads())


@dataclass(frozen=True, eq=False)
class _Offset:
    """Offset ``k``'s pairs sorted by output row (a pair's order within one offset does not
    change any sum: an output row has at most one pair per offset). ``order`` maps a sorted
    place to the pair's place in the map (``None``: the map's pairs were already sorted)."""

    k: int
    rows_in: torch.Tensor
    rows_out: np.ndarray
    order: torch.Tensor | None


@dataclass(frozen=True, eq=False)
class _BagBlock:
    """The pairs whose output row lies in ``[lo, hi)``, offset by offset in plan order.

    ``segments`` are ``(offset, first, last, a, b)``: sorted pairs ``a:b`` of that offset fill
    places ``first:last`` of the block's products; ``steps`` cut them into gather -> GEMM
    chunks ``(offset index, input rows, first, last)`` for the no-grad path.
    ``bag_index``/``bag_offsets`` list, per output row of the block, the places of its
    products in plan order: the bags that ``embedding_bag`` sums.
    """

    lo: int
    hi: int
    size: int
    segments: tuple[tuple[_Offset, int, int, int, int], ...]
    steps: tuple[tuple[int, torch.Tensor, int, int], ...]  # (offset, input rows, first, last)
    bag_index: torch.Tensor  # (size,) int64
    bag_offsets: torch.Tensor  # (hi - lo,) int64

    def add_sums(self, out: torch.Tensor, products: torch.Tensor) -> None:
        """``out[lo:hi] +=`` each output row's products summed in plan order (one thread per
        output row, so the same sum at any thread count)."""
        sums = torch.nn.functional.embedding_bag(
            self.bag_index, products, self.bag_offsets, mode="sum"
        )
        out[self.lo: self.hi] += sums


def _sorted_offset(kernel_map: KernelMap, k: int) -> _Offset:
    rows_in, rows_out = kernel_map.in_rows[k], kernel_map.out_rows[k]
    if rows_out.numel() < 2 or bool((rows_out[1:] > rows_out[:-1]).all()):
        return _Offset(k, rows_in, rows_out.numpy(), None)
    order = torch.sort(rows_out).indices
    return _Offset(k, rows_in[order], rows_out[order].numpy(), order)


def _chunks(size: int, chunk: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + chunk, size)) for lo in range(0, size, chunk)]


def _bag_blocks(kernel_map: KernelMap, order: list[int], rows: int,
                chunk: int) -> list[_BagBlock]:
    """Blocks of output rows with about ``rows`` pairs each, for the offset ``order``, with
    gather -> GEMM steps of at most ``chunk`` rows (a block holds at least one output row and
    one pair: a row range without pairs is left out); built once per map, order and sizes
    (kept in ``kernel_map.derived``)."""
    cache = kernel_map.derived.setdefault("bag_blocks", {})
    key = (tuple(order), rows, chunk)
    if key in cache:
        return cache[key]
    offsets = [_sorted_offset(kernel_map, k) for k in order]
    n_out = kernel_map.n_out
    per_row = np.zeros(n_out, dtype=np.int64)
    for offset in offsets:
        per_row[offset.rows_out] += 1  # rows are unique within an offset
    starts = np.zeros(n_out + 1, dtype=np.int64)  # each output row's first bag slot
    np.cumsum(per_row, out=starts[1:])
    total = int(starts[-1])
    n_blocks = max(1, -(-total // rows))
    wanted = np.arange(1, n_blocks, dtype=np.int64) * total // n_blocks
    cuts = np.array(sorted({0, n_out, *np.searchsorted(starts[1:], wanted, side="right")
                            .tolist()}), dtype=np.int64)
    # pairs of offset j inside block b: sorted places bounds[j, b]:bounds[j, b + 1]; they fill
    # block places first[j, b]:... (offsets in plan order within a block)
    bounds = np.stack([np.searchsorted(offset.rows_out, cuts) for offset in offsets])
    counts = np.diff(bounds, axis=1)
    first = np.cumsum(counts, axis=0) - counts
    # each output row's products in plan order: offsets are visited in plan order and an
    # output row has at most one pair per offset (a counting sort, no comparisons); every
    # block's bag slots are one slice of these arrays, built in one go
    bag_index, slot = np.empty(total, dtype=np.int64), starts[:-1].copy()
    for j, offset in enumerate(offsets):
        shift = np.repeat(first[j] - bounds[j, :-1], counts[j])
        bag_index[slot[offset.rows_out]] = np.arange(offset.rows_out.size) + shift
        slot[offset.rows_out] += 1
    bag_offsets = starts[:-1] - np.repeat(starts[cuts[:-1]], np.diff(cuts))
    bag_index_t, bag_offsets_t = torch.from_numpy(bag_index), torch.from_numpy(bag_offsets)
    blocks = []
    for b, (lo, hi) in enumerate(itertools.pairwise(cuts.tolist())):
        size = int(starts[hi] - starts[lo])
        if not size:  # output rows without pairs (here) get nothing added
            continue
        segments = tuple(
            (offset, int(first[j, b]), int(first[j, b] + counts[j, b]), int(bounds[j, b]),
             int(bounds[j, b + 1]))
            for j, offset in enumerate(offsets) if counts[j, b]
        )
        steps = tuple(
            (offset.k, offset.rows_in[a + lo_: a + hi_], start + lo_, start + hi_)
            for offset, start, _, a, end in segments
            for lo_, hi_ in _chunks(end - a, chunk)
        )
        blocks.append(_BagBlock(lo, hi, size, segments, steps,
                                bag_index_t[starts[lo]: starts[hi]], bag_offsets_t[lo:hi]))
    cache[key] = blocks
    return blocks


def _pieces(feats: torch.Tensor, weight: torch.Tensor, kernel_map: KernelMap,
            groups: list[list[int]]) -> dict[int, torch.Tensor]:
    """Products of the batched (``bmm``) groups' offsets, whole offsets, by offset index."""
    pieces: dict[int, torch.Tensor] = {}
    for group in (g for g in groups if len(g) > 1):
        pieces.update(zip(group, _group_products(feats, weight, kernel_map, group), strict=True))
    return pieces


def _accumulate(
    out: torch.Tensor,
    feats: torch.Tensor,
    weight: torch.Tensor,
    kernel_map: KernelMap,
    groups: list[list[int]],
) -> None:
    """``out += sum_k S_k feats W_k`` over the offsets of ``groups``, block by block of output
    rows: each block's products (``x[in_rows] @ W_k`` offset by offset) are summed per output
    row by ``embedding_bag`` in plan order and added to the block's rows of ``out``.

    Without autograd the products go into one reused buffer of about ``BATCH_BYTES``, filled
    by gathers of ``_chunk_rows()`` rows into a second one; with it they are concatenated.
    Both sum the same products in the same order, so the two paths agree bitwise.
    """
    order = [k for group in groups for k in group]
    if not order:
        return
    rows = max(1, BATCH_BYTES // (weight.shape[2] * weight.element_size()))
    chunk = _chunk_rows()
    blocks = _bag_blocks(kernel_map, order, rows, chunk)
    pieces = _pieces(feats, weight, kernel_map, groups)

    def piece(offset: _Offset, a: int, b: int) -> torch.Tensor:
        products = pieces[offset.k]
        return products[a:b] if offset.order is None else products[offset.order[a:b]]

    if torch.is_grad_enabled() and (feats.requires_grad or weight.requires_grad):
        for block in blocks:
            parts = [
                piece(offset, a, b) if offset.k in pieces
                else feats.index_select(0, offset.rows_in[a:b]) @ weight[offset.k]
                for offset, _, _, a, b in block.segments
            ]
            block.add_sums(out, torch.cat(parts))
        return
    longest = max(block.size for block in blocks)
    products = feats.new_empty(longest, weight.shape[2])
    gathered = feats.new_empty(min(chunk, longest), feats.shape[1])
    kernels = weight.unbind(0)
    for block in blocks:
        for offset, first, last, a, b in block.segments:
            if offset.k in pieces:
                products[first:last] = piece(offset, a, b)
        for k, rows_in, first, last in block.steps:
            if k in pieces:
                continue
            step = gathered[: last - first]
            torch.index_select(feats, 0, rows_in, out=step)
            torch.mm(step, kernels[k], out=products[first:last])
        block.add_sums(out, products[: block.size])
