"""Sparse convolution over a kernel map: gather -> GEMM -> scatter-add.

For offset ``k`` with pairs ``(in_rows, out_rows)``: ``y[out_rows] += x[in_rows] @ W_k``.
Offsets with similar pair counts can be stacked (padded to the largest count) and multiplied
with one ``torch.bmm`` so the CPU GEMM sees larger problems (``ConvPlan``); an identity offset
(the centre of a sub-manifold map) is one plain ``x @ W_k`` without gather or scatter, and
starts the output (no zero fill). Without autograd, gathers and products go through two
reused buffers of ``CHUNK_ROWS`` rows: no allocation per offset, and each chunk stays in cache
from gather through GEMM to scatter.

Determinism: the partial products are accumulated into ``y`` one offset at a time, in the
plan's order (identity offset first, then by pair count, ties by offset index), which depends
only on the map's pair counts. Within an offset every output row receives at most one row, so
each output element is a fixed-order sum, independent of thread count and of the input row
order (up to the corresponding permutation of rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .kernel_map import KernelMap

__all__ = ["CHUNK_ROWS", "ConvPlan", "plan_offset_groups", "sparse_conv"]

CHUNK_ROWS = 4096  # pair rows per gather -> GEMM -> scatter step of the no-grad path


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


def sparse_conv(
    feats: torch.Tensor,
    weight: torch.Tensor,
    kernel_map: KernelMap,
    n_out: int,
    plan: ConvPlan | None = None,
) -> torch.Tensor:
    """``y = sum_k S_k @ feats @ weight[k]`` over the pairs of ``kernel_map``.

    Args:
        feats: ``(N_in, C_in)`` float features of the input sites.
        weight: ``(K, C_in, C_out)``, ``weight[k]`` for kernel offset ``k`` of the map.
        kernel_map: pairs from ``build_submanifold_map`` / ``build_strided_map`` / transposed.
        n_out: number of output sites (must equal ``kernel_map.n_out``).
        plan: offset batching (``ConvPlan()`` by default); changes speed, not the math.

    Returns ``(n_out, C_out)``; output sites without any pair are zero. Autograd works.

    Raises:
        TypeError: wrong types or mismatched dtypes.
        ValueError: shapes that do not match each other or the kernel map.
    """
    _check_inputs(feats, weight, kernel_map, n_out)
    plan = plan or ConvPlan()
    identity = [k for k in range(kernel_map.volume) if _is_identity(kernel_map, k)]
    out = feats @ weight[identity[0]] if identity else feats.new_zeros(n_out, weight.shape[2])
    for k in identity[1:]:
        out.add_(feats @ weight[k])
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


def _accumulate_inplace(
    out: torch.Tensor,
    feats: torch.Tensor,
    weight: torch.Tensor,
    kernel_map: KernelMap,
    groups: list[list[int]],
) -> None:
    """``out[out_rows_k] += feats[in_rows_k] @ W_k`` per offset, in ``groups`` order, no autograd.

    Gathers and products go through two reused buffers of ``CHUNK_ROWS`` rows (no allocation
    or page faults per offset, and the chunk stays in cache between gather, GEMM and scatter).
    Per output element the summation order is the same as the autograd path's.
    """
    longest = max((kernel_map.in_rows[k].numel() for g in groups for k in g), default=0)
    rows = min(longest, CHUNK_ROWS)
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
        for start in range(0, rows_in.numel(), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, rows_in.numel())
            size = stop - start
            torch.index_select(feats, 0, rows_in[start:stop], out=gathered[:size])
            torch.mm(gathered[:size], weight[k], out=product[:size])
            out.index_add_(0, rows_out[start:stop], product[:size])
