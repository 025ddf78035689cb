"""The whole sparse convolution in one numba pass: gather, multiply and sum per output row.

``fused_conv`` computes what ``sparse_conv`` computes, ``y = initial + bias + sum_k S_k x W_k``
(then ReLU when asked), output-stationary: each output row is owned by one thread, which walks
that row's pairs in offset order, multiplies each input row by its offset's weight slice and
accumulates into one row of registers, then writes the row once (with the bias, the ``initial``
start and the ReLU applied on the way out). Nothing is gathered into a buffer, no products are
stored, no output is scattered twice: for the small channel counts of a point-cloud U-Net
(16 to 96) the GEMM library's tall-skinny products are slower than this loop.

The pairs are regrouped once per map into a row-major table (``RowPairs``: for every output
row its ``(offset, input row)`` pairs in offset order), kept in ``kernel_map.derived``.

Determinism: an output element is ``start + p_1 + p_2 + ...`` over its pairs in offset order
and, within a pair, over input channels in order, computed by one thread: the same at any
thread count, and for any input row order (up to the permutation of rows). FMA contraction is
allowed (``fastmath={"contract"}``), so the sum rounds differently from the torch path; both
are tested against the dense reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import _jit
from .kernel_map import KernelMap

__all__ = ["REGISTER_WIDTHS", "ROW_BLOCK", "RowPairs", "fused_conv", "kernel_for", "row_pairs"]

ROW_BLOCK = 64
"""Output rows per task of the parallel loop (one accumulator row per task)."""


@dataclass(frozen=True, eq=False)
class RowPairs:
    """A map's pairs by output row: row ``r``'s pairs are ``start[r]:start[r + 1]`` (uint64)
    of ``offset`` / ``source`` (uint32), in offset order."""

    start: np.ndarray
    offset: np.ndarray
    source: np.ndarray


def row_pairs(kernel_map: KernelMap) -> RowPairs:
    """The map's pairs regrouped by output row (built once, kept in ``kernel_map.derived``)."""
    cached = kernel_map.derived.get("row_pairs")
    if cached is not None:
        return cached
    counts = [rows.numel() for rows in kernel_map.out_rows]
    if sum(counts):
        out_rows = np.concatenate([rows.numpy() for rows in kernel_map.out_rows])
        in_rows = np.concatenate([rows.numpy() for rows in kernel_map.in_rows])
        offsets = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        order = np.argsort(out_rows, kind="stable")  # offsets stay in order within a row
        offset, source = offsets[order].astype(np.uint32), in_rows[order].astype(np.uint32)
        per_row = np.bincount(out_rows, minlength=kernel_map.n_out)
    else:
        offset = source = np.zeros(0, dtype=np.uint32)
        per_row = np.zeros(kernel_map.n_out, dtype=np.int64)
    # unsigned indices: numba emits no negative-index wrap-around test for them, which keeps
    # the accumulator loop free of branches (measured 17.5 -> 12.9 ms at 32 channels)
    start = np.zeros(kernel_map.n_out + 1, dtype=np.uint64)
    np.cumsum(per_row, out=start[1:])
    pairs = RowPairs(start, np.ascontiguousarray(offset), np.ascontiguousarray(source))
    kernel_map.derived["row_pairs"] = pairs
    return pairs


@_jit.kernel("fused_conv")
def _fused_conv_kernel(numba):
    """The generic kernel: any channel counts, the accumulator row in memory (L1)."""
    @numba.njit(parallel=True, cache=True, nogil=True, fastmath={"contract"})
    def conv(x, w, start, offset, source, bias, initial, relu, block, out):
        n_out, c_out = out.shape
        c_in = x.shape[1]
        with_bias, with_initial = bias.shape[0] > 0, initial.shape[0] > 0
        for task in numba.prange((n_out + block - 1) // block):
            acc = np.empty(c_out, dtype=out.dtype)
            for r in range(task * block, min(n_out, (task + 1) * block)):
                for o in range(c_out):
                    acc[o] = 0.0
                if with_initial:
                    for o in range(c_out):
                        acc[o] += initial[r, o]
                if with_bias:
                    for o in range(c_out):
                        acc[o] += bias[o]
                for p in range(start[r], start[r + 1]):
                    k, i = offset[p], source[p]
                    for c in range(c_in):
                        value = x[i, c]
                        for o in range(c_out):
                            acc[o] += value * w[k, c, o]
                if relu:
                    for o in range(c_out):
                        out[r, o] = acc[o] if acc[o] > 0.0 else 0.0
                else:
                    for o in range(c_out):
                        out[r, o] = acc[o]
    return conv


REGISTER_WIDTHS = (8, 16, 24, 32, 40, 48)
"""``C_out`` with a register kernel (one named accumulator per output channel, which LLVM's
SLP vectoriser packs into SIMD registers). Above 48 channels the accumulators spill and the
GEMM library wins (see ``FUSED_MAX_CHANNELS`` in ``common_sparse.conv``); any other ``C_out``
runs the generic kernel when the numba backend is forced."""


def _register_source(width: int) -> str:
    """The source of ``conv_<width>``: ``width`` named accumulators per output row."""
    names = [f"a{j}" for j in range(width)]
    body = [
        f"def conv_{width}(x, w, start, offset, source, bias, initial, relu, block, out):",
        "    n_out = out.shape[0]",
        "    c_in = x.shape[1]",
        "    with_bias, with_initial = bias.shape[0] > 0, initial.shape[0] > 0",
        "    zero = np.zeros(1, dtype=out.dtype)[0]  # accumulators of the features' dtype",
        "    lower = zero if relu else np.full(1, -np.inf, dtype=out.dtype)[0]",
        "    for task in prange((n_out + block - 1) // block):",
        "        for r in range(task * block, min(n_out, (task + 1) * block)):",
    ]
    body += [f"            {n} = zero" for n in names]
    body.append("            if with_initial:")
    body += [f"                {n} += initial[r, {j}]" for j, n in enumerate(names)]
    body.append("            if with_bias:")
    body += [f"                {n} += bias[{j}]" for j, n in enumerate(names)]
    body += [
        "            for p in range(start[r], start[r + 1]):",
        "                k, i = offset[p], source[p]",
        "                for c in range(c_in):",
        "                    value = x[i, c]",
    ]
    body += [f"                    {n} += value * w[k, c, {j}]" for j, n in enumerate(names)]
    # one store path, branch-free: max(a, lower) with lower 0 (ReLU) or -inf; a NaN stays NaN
    body += [f"            out[r, {j}] = {n} if not {n} < lower else lower"
             for j, n in enumerate(names)]
    return "\n".join(body) + "\n"


def _register_builder(width: int):
    def build(numba):
        # defined in this module (its globals, its file name): numba's on-disk cache keys the
        # kernel by this file and rebuilds its environment from this module in a new process
        module = globals()
        module.setdefault("prange", numba.prange)
        exec(compile(_register_source(width), __file__, "exec"), module)
        return numba.njit(parallel=True, cache=True, nogil=True,
                          fastmath={"contract"})(module[f"conv_{width}"])  # fmt: skip
    return build


for _width in REGISTER_WIDTHS:
    _jit.kernel(f"fused_conv_{_width}")(_register_builder(_width))


def kernel_for(c_out: int) -> str:
    """The name of the kernel that runs ``C_out`` output channels (see REGISTER_WIDTHS)."""
    return f"fused_conv_{c_out}" if c_out in REGISTER_WIDTHS else "fused_conv"


def fused_conv(
    feats: torch.Tensor, weight: torch.Tensor, kernel_map: KernelMap, *,
    bias: torch.Tensor | None = None, initial: torch.Tensor | None = None, relu: bool = False,
) -> torch.Tensor | None:
    """``relu?(initial + bias + sum_k S_k feats W_k)`` as a new ``(n_out, C_out)`` tensor, or
    ``None`` when numba kernels are off (``edgeinfer._jit``). No autograd: callers take this
    path only without gradients. Inputs are checked by ``sparse_conv``."""
    conv = _jit.get(kernel_for(int(weight.shape[2])))
    if conv is None:
        return None
    pairs = row_pairs(kernel_map)
    dtype = feats.dtype
    x = feats.detach().contiguous().numpy()
    w = weight.detach().to(dtype).contiguous().numpy()
    empty = np.zeros(0, dtype=x.dtype)
    b = empty if bias is None else bias.detach().to(dtype).contiguous().numpy()
    init = empty.reshape(0, 0) if initial is None else initial.detach().contiguous().numpy()
    out = torch.empty(kernel_map.n_out, weight.shape[2], dtype=dtype)
    with _jit.threads():
        conv(x, w, pairs.start, pairs.offset, pairs.source, b, init, bool(relu), ROW_BLOCK,
             out.numpy())  # fmt: skip
    return out


@_jit.warmer
def _warm() -> None:
    from .kernel_map import build_submanifold_map

    kernel_map = build_submanifold_map(torch.zeros(1, 4, dtype=torch.int32), 1)
    for c_out in (*REGISTER_WIDTHS, 1):
        fused_conv(torch.zeros(1, 1), torch.zeros(1, 1, c_out), kernel_map)
