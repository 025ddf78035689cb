"""The whole sparse convolution in one numba pass: gather, multiply and sum, no buffers.

``fused_conv`` computes what ``sparse_conv`` computes, ``y = initial + bias + sum_k S_k x W_k``
(then ReLU when asked). Output rows are cut into blocks of ``ROW_BLOCK``; one thread owns a
block. It writes the block's start (``initial + bias``), then, for each tile of ``T`` output
channels and each kernel offset ``k`` in order, takes that offset's pairs in the block a few
at a time (``PAIR_GROUPS``): those input rows times the same weight slice ``W_k[:, tile]``
(loaded once for the group), accumulated in registers onto the output rows' tiles, stored
back. ReLU is applied to the block at the end. Nothing is gathered into a buffer and no
product is stored: for the channel counts of a point-cloud U-Net this loop beats the GEMM
library's tall-skinny products (``edgeinfer bench pointcloud`` and
``scripts/sparse_gemm_floor.py`` measure it).

The pairs are regrouped once per map (``BlockPairs``: by output-row block, then offset), kept
in ``kernel_map.derived``.

Determinism: an output element is ``start + p_1 + p_2 + ...`` over its pairs in offset order
(an output row has at most one pair per offset) and, within a pair, over input channels in
order, computed by one thread: the same at any thread count, and for any input row order (up
to the permutation of rows). FMA contraction is allowed (``fastmath={"contract"}``), so the
sum rounds differently from the torch path; both are tested against the dense reference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from .. import _jit
from .kernel_map import KernelMap

__all__ = [
    "PAIR_GROUPS", "ROW_BLOCK", "TILE_WIDTHS", "BlockPairs", "block_pairs", "fused_conv",
    "kernel_for", "tile_for",
]

ROW_BLOCK = 128
"""Output rows per task of the parallel loop."""
PAIR_GROUPS = {8: 4, 16: 4, 32: 4, 48: 3}
"""Tile width -> pairs of one offset multiplied together against one load of the weight
slice. The kernels hold ``group x width`` accumulators, which LLVM's SLP vectoriser packs into
SIMD registers; 3 x 48 ran as fast as 4 x 48 and compiles in two thirds of the time."""
TILE_WIDTHS = tuple(PAIR_GROUPS)
"""Output-channel tile widths with a register kernel. Tiles above 16 need the 32 vector
registers of AVX-512; elsewhere (AVX2, NEON) the widest tile is 16 (see :func:`tile_for`)."""


@dataclass(frozen=True, eq=False)
class BlockPairs:
    """A map's pairs by block of ``block`` output rows, then offset: block ``b``'s pairs at
    offset ``k`` are ``start[b * K + k]:start[b * K + k + 1]`` (int64) of ``target`` (output
    row) and ``source`` (input row), both uint32."""

    block: int
    start: np.ndarray
    target: np.ndarray
    source: np.ndarray


def block_pairs(kernel_map: KernelMap, block: int = ROW_BLOCK) -> BlockPairs | None:
    """The map's pairs regrouped by output-row block and offset (built once per map and
    block size, kept in ``kernel_map.derived``), or ``None`` when numba kernels are off.

    A counting sort (one numba pass to count the pairs of each block and offset, one to
    place them), stable: within a block and offset, pairs keep the map's order."""
    key = ("block_pairs", block)
    cached = kernel_map.derived.get(key)
    if cached is not None:
        return cached
    group = _jit.get("block_pairs")
    if group is None:
        return None
    volume = kernel_map.volume
    n_blocks = (kernel_map.n_out + block - 1) // block
    counts = np.asarray(kernel_map.pair_counts(), dtype=np.int64)
    total = int(counts.sum())
    start = np.zeros(n_blocks * volume + 1, dtype=np.int64)
    target = np.empty(total, dtype=np.uint32)
    source = np.empty(total, dtype=np.uint32)
    if total:
        group(np.concatenate([rows.numpy() for rows in kernel_map.out_rows]),
              np.concatenate([rows.numpy() for rows in kernel_map.in_rows]),
              counts, block, start, target, source)  # fmt: skip
    pairs = BlockPairs(block, start, target, source)
    kernel_map.derived[key] = pairs
    return pairs


@_jit.kernel("block_pairs")
def _block_pairs_kernel(numba):
    @numba.njit(cache=True, nogil=True)
    def group(targets, sources, counts, block, start, target, source):
        volume = counts.shape[0]
        p = 0
        for k in range(volume):  # pairs per (block, offset), counted into start[1:]
            for _ in range(counts[k]):
                start[(targets[p] // block) * volume + k + 1] += 1
                p += 1
        for j in range(1, start.shape[0]):
            start[j] += start[j - 1]
        fill = start[:-1].copy()
        p = 0
        for k in range(volume):
            for _ in range(counts[k]):
                bucket = (targets[p] // block) * volume + k
                place = fill[bucket]
                fill[bucket] = place + 1
                target[place], source[place] = targets[p], sources[p]
                p += 1
    return group


@functools.cache
def _widest_tile() -> int:
    try:
        import llvmlite.binding as llvm

        wide = bool(llvm.get_host_cpu_features().get("avx512f"))
    except Exception:  # no llvmlite (numba missing) or no feature map: the safe width
        wide = False
    return 48 if wide else 16


def tile_for(c_out: int) -> int | None:
    """The tile width of the register kernel for ``C_out`` output channels (the widest in
    :data:`TILE_WIDTHS` that divides it and fits the host's vector registers), or ``None``
    when none divides it (the generic kernel runs)."""
    for width in sorted(TILE_WIDTHS, reverse=True):
        if width <= _widest_tile() and c_out % width == 0:
            return width
    return None


def kernel_for(c_out: int) -> str:
    """The name of the kernel that runs ``C_out`` output channels."""
    tile = tile_for(c_out)
    return "fused_conv" if tile is None else f"fused_conv_t{tile}"


# The kernels' shared frame: the start of the block, the tile and offset loops, the ReLU.
_HEAD = """\
def {name}(x, w, start, target, source, bias, initial, relu, block, out):
    n_out, n_tiles, width = out.shape
    volume, c_in = w.shape[0], x.shape[1]
    with_bias, with_initial = bias.shape[0] > 0, initial.shape[0] > 0
    zero = np.zeros(1, dtype=out.dtype)[0]
    for b in prange((n_out + block - 1) // block):
        lo, hi = b * block, min(n_out, (b + 1) * block)
        for r in range(lo, hi):
            for t in range(n_tiles):
                for j in range({width}):
                    value = zero
                    if with_initial:
                        value += initial[r, t, j]
                    if with_bias:
                        value += bias[t, j]
                    out[r, t, j] = value
        for t in range(n_tiles):
            for k in range(volume):
                p, end = start[b * volume + k], start[b * volume + k + 1]
"""
_TAIL = """\
        if relu:  # max(v, 0) that keeps a NaN
            for r in range(lo, hi):
                for t in range(n_tiles):
                    for j in range({width}):
                        value = out[r, t, j]
                        out[r, t, j] = value if not value < zero else zero
"""
_GENERIC = """\
                for q in range(p, end):
                    o, i = target[q], source[q]
                    for c in range(c_in):
                        value = x[i, c]
                        for j in range(width):
                            out[o, t, j] += value * w[k, c, t, j]
"""


def _tile_source(width: int, group: int) -> str:
    """``conv_t<width>``: ``group`` pairs x ``width`` named accumulators; the pairs left over
    at the end of an offset (fewer than ``group``) take a plain loop (vectorised, not unrolled:
    a second unrolled body would double the compile time for a few percent of the pairs)."""
    rows, cols = range(group), range(width)
    pad = " " * 20
    body = [f"                while p + {group} <= end:"]
    for g in rows:
        body.append(f"{pad}o{g}, i{g} = target[p + {g}], source[p + {g}]")
        body += [f"{pad}a{g}_{j} = out[o{g}, t, {j}]" for j in cols]
    body.append(f"{pad}for c in range(c_in):")
    body += [f"{pad}    v{g} = x[i{g}, c]" for g in rows]
    for j in cols:
        body.append(f"{pad}    w{j} = w[k, c, t, {j}]")
        body += [f"{pad}    a{g}_{j} += v{g} * w{j}" for g in rows]
    for g in rows:
        body += [f"{pad}out[o{g}, t, {j}] = a{g}_{j}" for j in cols]
    body.append(f"{pad}p += {group}")
    body.append(_GENERIC.replace("range(width)", f"range({width})").rstrip("\n"))
    return (_HEAD.format(name=f"conv_t{width}", width=width) + "\n".join(body) + "\n"
            + _TAIL.format(width=width))


def _generic_source() -> str:
    """``conv``: any channel counts, one tile of all ``C_out`` channels, loops not unrolled."""
    return (_HEAD.format(name="conv", width="width") + _GENERIC + _TAIL.format(width="width"))


def _builder(name: str, source: str):
    def build(numba):
        # defined in this module (its globals, its file name): numba's on-disk cache keys the
        # kernel by this file and rebuilds its environment from this module in a new process
        module = globals()
        module.setdefault("prange", numba.prange)
        exec(compile(source, __file__, "exec"), module)
        return numba.njit(parallel=True, cache=True, nogil=True,
                          fastmath={"contract"})(module[name])  # fmt: skip
    return build


_jit.kernel("fused_conv")(_builder("conv", _generic_source()))
for _width in TILE_WIDTHS:
    _jit.kernel(f"fused_conv_t{_width}")(
        _builder(f"conv_t{_width}", _tile_source(_width, PAIR_GROUPS[_width])))


def fused_conv(
    feats: torch.Tensor, weight: torch.Tensor, kernel_map: KernelMap, *,
    bias: torch.Tensor | None = None, initial: torch.Tensor | None = None, relu: bool = False,
) -> torch.Tensor | None:
    """``relu?(initial + bias + sum_k S_k feats W_k)`` as a new ``(n_out, C_out)`` tensor, or
    ``None`` when numba kernels are off (``edgeinfer._jit``). No autograd: callers take this
    path only without gradients. Inputs are checked by ``sparse_conv``."""
    volume, c_in, c_out = weight.shape
    conv = _jit.get(kernel_for(int(c_out)))
    if conv is None:
        return None
    width = tile_for(int(c_out)) or int(c_out)
    tiles = c_out // width if c_out else 0
    pairs = block_pairs(kernel_map)
    if pairs is None:
        return None
    dtype = feats.dtype
    x = feats.detach().contiguous().numpy()
    # (K, C_in, tiles, width): a view of the contiguous weight, no copy
    w = weight.detach().to(dtype).contiguous().numpy().reshape(volume, c_in, tiles, width)
    empty = np.zeros(0, dtype=x.dtype)
    b = (empty.reshape(0, 0) if bias is None
         else bias.detach().to(dtype).contiguous().numpy().reshape(tiles, width))
    init = (empty.reshape(0, 0, 0) if initial is None
            else initial.detach().contiguous().numpy().reshape(-1, tiles, width))
    out = torch.empty(kernel_map.n_out, c_out, dtype=dtype)
    if out.numel():
        with _jit.threads():
            conv(x, w, pairs.start, pairs.target, pairs.source, b, init, bool(relu),
                 pairs.block, out.numpy().reshape(-1, tiles, width))  # fmt: skip
    return out


@_jit.warmer
def _warm() -> None:
    from .kernel_map import build_submanifold_map

    kernel_map = build_submanifold_map(torch.zeros(1, 4, dtype=torch.int32), 1)
    for c_out in (*TILE_WIDTHS, 1):
        if c_out == 1 or tile_for(c_out) == c_out:
            fused_conv(torch.zeros(1, 1), torch.zeros(1, 1, c_out), kernel_map)
