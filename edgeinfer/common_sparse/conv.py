"""Sparse convolution over a kernel map: gather -> GEMM -> scatter-add.

For offset ``k`` with pairs ``(in_rows, out_rows)``: ``y[out_rows] += x[in_rows] @ W_k``.
Offsets with similar pair counts can be stacked (padded to the largest count) and multiplied
with one ``torch.bmm`` so the CPU GEMM sees larger problems (``ConvPlan``); an identity offset
(the centre of a sub-manifold map) is one plain ``x @ W_k`` without gather or scatter, and
starts the output (no zero fill).

Without autograd (inference) the products of all offsets, in plan order, are cut into batches
of ``BATCH_ROWS`` pair rows. A batch is filled by gathers of ``CHUNK_ROWS`` rows per torch
thread and one GEMM per chunk, then added to ``y`` in one sparse-times-dense product with the
batch's scatter matrix (CSR, rows = output sites, built once per map and batch and kept on the
map): scipy's compiled loop adds each output row's products in column order, far cheaper than
one ``index_add_`` per pair row, and independent output-row blocks run on the torch threads.
float16/bfloat16 features (which scipy cannot multiply) use per-chunk ``index_add_``, as
does everything if scipy's in-place product (a private function) is not importable.

Determinism: the partial products are accumulated into ``y`` one offset at a time, in the
plan's order (identity offset first, then by pair count, ties by offset index), which depends
only on the map's pair counts; the scatter matrix keeps that order within each output row.
Within an offset every output row receives at most one row, so each output element is the
same fixed-order sum on every path (the autograd path, either scatter, any thread count) and
for any input row order (up to the corresponding permutation of rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._threads import parallel_map, worker_count
from .kernel_map import KernelMap

__all__ = ["BATCH_ROWS", "CHUNK_ROWS", "ConvPlan", "plan_offset_groups", "sparse_conv"]

CHUNK_ROWS = 4096  # pair rows per torch thread per gather -> GEMM step of the no-grad path
BATCH_ROWS = 1 << 16  # pair rows of products held at once, then scattered in one product
_SCIPY_DTYPES = (torch.float32, torch.float64)


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


def sparse_conv(
    feats: torch.Tensor,
    weight: torch.Tensor,
    kernel_map: KernelMap,
    n_out: int,
    plan: ConvPlan | None = None,
    *,
    bias: torch.Tensor | None = None,
    initial: torch.Tensor | None = None,
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

    Returns a new ``(n_out, C_out)`` tensor; output sites without any pair get
    ``initial + bias`` (zero without them). Autograd works.

    Raises:
        TypeError: wrong types or mismatched dtypes.
        ValueError: shapes that do not match each other or the kernel map.
    """
    _check_inputs(feats, weight, kernel_map, n_out)
    _check_epilogue("bias", bias, (weight.shape[2],), feats.dtype)
    _check_epilogue("initial", initial, (n_out, weight.shape[2]), feats.dtype)
    plan = plan or ConvPlan()
    identity = [k for k in range(kernel_map.volume) if _is_identity(kernel_map, k)]
    out = _start(feats, weight, identity, n_out, bias, initial)
    counts = [0 if k in identity else c for k, c in enumerate(kernel_map.pair_counts())]
    groups = plan_offset_groups(counts, plan)
    needs_grad = torch.is_grad_enabled() and (feats.requires_grad or weight.requires_grad)
    if not needs_grad:
        _accumulate_inplace(out, feats, weight, kernel_map, groups)
        return out
    # Accumulate group by group as soon as a product exists (peak memory: one group's
    # products, not all K). The plan order depends only on the pair counts, so the summation
    # order is the same at any thread count and for any input row order.
    for group in groups:
        for k, product in zip(group, _group_products(feats, weight, kernel_map, group),
                              strict=True):
            out.index_add_(0, kernel_map.out_rows[k], product)
    return out


def _chunk_rows() -> int:
    """Pair rows per gather -> GEMM step: ``CHUNK_ROWS`` per torch thread (small steps do not
    split well over threads)."""
    return CHUNK_ROWS * max(1, torch.get_num_threads())


def _accumulate_inplace(
    out: torch.Tensor,
    feats: torch.Tensor,
    weight: torch.Tensor,
    kernel_map: KernelMap,
    groups: list[list[int]],
) -> None:
    """``out[out_rows_k] += feats[in_rows_k] @ W_k`` per offset, in ``groups`` order, no autograd.

    Per output element the summation order is the same as the autograd path's.
    """
    if _csr_matvecs is None or feats.dtype not in _SCIPY_DTYPES or not groups:
        _accumulate_index_add(out, feats, weight, kernel_map, groups)
        return
    order = [k for group in groups for k in group]
    batches = _scatter_batches(kernel_map, order)
    chunk = _chunk_rows()
    products = feats.new_empty(max(b.stop - b.start for b in batches), weight.shape[2])
    gathered = feats.new_empty(min(chunk, products.shape[0]), feats.shape[1])
    bounds = np.cumsum([0] + [kernel_map.in_rows[k].numel() for k in order]).tolist()
    pieces: dict[int, torch.Tensor] = {}  # products of batched (bmm) groups
    for group in (g for g in groups if len(g) > 1):
        pieces.update(zip(group, _group_products(feats, weight, kernel_map, group), strict=True))
    for batch in batches:
        for j, k in enumerate(order):  # the part of offset k inside this batch
            first, last = max(bounds[j], batch.start), min(bounds[j + 1], batch.stop)
            if first >= last:
                continue
            target = products[first - batch.start: last - batch.start]
            if k in pieces:
                target.copy_(pieces[k][first - bounds[j]: last - bounds[j]])
                continue
            rows_in = kernel_map.in_rows[k][first - bounds[j]: last - bounds[j]]
            for lo in range(0, last - first, chunk):
                hi = min(lo + chunk, last - first)
                torch.index_select(feats, 0, rows_in[lo:hi], out=gathered[: hi - lo])
                torch.mm(gathered[: hi - lo], weight[k], out=target[lo:hi])
        batch.scatter_add(out, products[: batch.stop - batch.start])


def _accumulate_index_add(
    out: torch.Tensor,
    feats: torch.Tensor,
    weight: torch.Tensor,
    kernel_map: KernelMap,
    groups: list[list[int]],
) -> None:
    """The chunked ``index_add_`` scatter, for dtypes scipy cannot multiply (half floats).

    Gathers and products go through two reused buffers of ``_chunk_rows()`` rows.
    """
    longest = max((kernel_map.in_rows[k].numel() for g in groups for k in g), default=0)
    chunk = _chunk_rows()
    rows = min(longest, chunk)
    gathered = feats.new_empty(rows, feats.shape[1])
    product = feats.new_empty(rows, weight.shape[2])
    for group in groups:
        if len(group) > 1:  # a batched (bmm) group: products are allocated as before
            for k, prod in zip(group, _group_products(feats, weight, kernel_map, group),
                               strict=True):
                out.index_add_(0, kernel_map.out_rows[k], prod)
            continue
        k = group[0]
        rows_in, rows_out = kernel_map.in_rows[k], kernel_map.out_rows[k]
        for start in range(0, rows_in.numel(), chunk):
            stop = min(start + chunk, rows_in.numel())
            size = stop - start
            torch.index_select(feats, 0, rows_in[start:stop], out=gathered[:size])
            torch.mm(gathered[:size], weight[k], out=product[:size])
            out.index_add_(0, rows_out[start:stop], product[:size])


try:  # scipy's compiled loops (private: without them, the index_add_ path)
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
    from scipy.sparse._sparsetools import csr_tocsc as _csr_tocsc
except ImportError:  # pragma: no cover - depends on scipy's private layout
    _csr_matvecs = _csr_tocsc = None


@dataclass(frozen=True, eq=False)
class _ScatterBatch:
    """Pair positions ``[start, stop)`` of the plan-ordered pairs and their scatter matrix:
    CSR arrays of ``n_out x (stop - start)`` with one 1 per pair at ``(out_row, position)``,
    positions ascending within each row (the plan's order)."""

    start: int
    stop: int
    indptr: np.ndarray  # (n_out + 1,) int32 (int64 past 2**31 - 1 output sites)
    indices: np.ndarray  # (stop - start,) same dtype
    data: np.ndarray  # (stop - start,) float32 ones

    def scatter_add(self, out: torch.Tensor, products: torch.Tensor) -> None:
        """``out += matrix @ products``; row blocks on up to ``torch.get_num_threads()``
        threads (each output row is summed by one thread in column order: deterministic)."""
        wanted = _numpy_dtype(out.dtype)
        data = self.data if self.data.dtype == wanted else self.data.astype(wanted)
        x, y = products.numpy(), out.numpy()
        n_out, channels = y.shape
        blocks = worker_count(8) if n_out * channels >= (1 << 16) else 1
        cuts = [n_out * b // blocks for b in range(blocks + 1)]

        def run(b: int) -> None:
            lo, hi = cuts[b], cuts[b + 1]
            _csr_matvecs(hi - lo, x.shape[0], channels, self.indptr[lo: hi + 1],
                         self.indices, data, x.reshape(-1), y[lo:hi].reshape(-1))

        parallel_map(run, range(blocks))


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == torch.float32 else np.dtype(np.float64)


def _scatter_batches(kernel_map: KernelMap, order: list[int]) -> list[_ScatterBatch]:
    """The scatter batches of ``kernel_map`` for the offset ``order``, built once per map.

    Each batch's CSR is the transpose of the one-entry-per-pair matrix (pair -> output row),
    made by scipy's compiled counting transpose: positions come out ascending in every row.
    """
    cache = kernel_map.derived.setdefault("scatter_batches", {})
    key = (tuple(order), BATCH_ROWS)
    if key not in cache:
        rows_out = torch.cat([kernel_map.out_rows[k] for k in order]).numpy()
        n_out, batches = kernel_map.n_out, []
        index = np.int32 if n_out < np.iinfo(np.int32).max else np.int64
        rows_out = rows_out.astype(index, copy=False)
        for start in range(0, rows_out.size, BATCH_ROWS):
            rows = np.ascontiguousarray(rows_out[start: start + BATCH_ROWS])
            size = rows.size
            indptr = np.empty(n_out + 1, dtype=index)
            indices = np.empty(size, dtype=index)
            data = np.empty(size, dtype=np.float32)
            _csr_tocsc(size, n_out, np.arange(size + 1, dtype=index), rows,
                       np.ones(size, dtype=np.float32), indptr, indices, data)
            batches.append(_ScatterBatch(start, start + size, indptr, indices, data))
        cache[key] = batches
    return cache[key]
