"""Changed-site convolution: the functional core of delta (changed-pixel) inference.

A layer is a :class:`FoldedConv`: a 2-D convolution with its batch norm folded in (an affine
``z = conv(x, W') + b'``) followed by an activation ``a = act(z)``. Feature maps are kept
channels-last and flattened, ``(B*H*W, C)``; a *site* is a row of that matrix (``b*H*W + y*W +
x``). Given the change ``delta`` of the layer input at a few sites, :func:`update_layer`

1. finds the output sites whose receptive field holds a changed input, and for each the input
   it reads per kernel offset (:func:`reach`: dense-conv semantics with the ``k // 2`` zero
   padding, unlike the "outputs at floor(c / s)" sites of a sparse strided map). That
   ``(M, K)`` table is the ``common_sparse`` kernel map in table form
   (:func:`table_to_kernel_map` gives the :class:`~edgeinfer.common_sparse.KernelMap`);
2. convolves the delta only there (the conv is linear, so ``conv(x + d) = conv(x) + conv(d)``;
   the bias is already in the cache) and adds it to the cached pre-activation ``z``;
3. recomputes ``act`` at those sites only and returns the change of the activation there, the
   next layer's input. (Rows whose change is zero, e.g. a ReLU6 clamped before and after, are
   kept: on the measured streams dropping them cost more than it saved.)

Two executions of step 3 give the same numbers up to rounding: ``"im2col"`` gathers the
``(M, K*C_in)`` patches and runs one GEMM; ``"kernel_map"`` runs
:func:`~edgeinfer.common_sparse.sparse_conv` (per-offset gather-GEMM-scatter). Depthwise layers
always use the gathered patches (a per-channel weighted sum; ``sparse_conv`` is dense in
channels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional

from edgeinfer.common_sparse import KernelMap, kernel_offsets, sparse_conv

__all__ = [
    "ACTIVATIONS",
    "DELTA_METHODS",
    "FoldedConv",
    "Grid",
    "activate",
    "conv_delta",
    "fold_conv_bn",
    "reach",
    "table_to_kernel_map",
    "update_layer",
]

ACTIVATIONS: tuple[str, ...] = ("none", "relu", "relu6")
DELTA_METHODS: tuple[str, ...] = ("box", "im2col", "kernel_map")


@dataclass(frozen=True)
class Grid:
    """The ``(batch, height, width)`` of a flattened channels-last feature map."""

    batch: int
    height: int
    width: int

    @property
    def sites(self) -> int:
        """Number of rows ``B*H*W``."""
        return self.batch * self.height * self.width

    def down(self, stride: int) -> Grid:
        """The output grid of a conv with this ``stride`` and ``k // 2`` padding (odd ``k``)."""
        return Grid(self.batch, (self.height - 1) // stride + 1, (self.width - 1) // stride + 1)


def activate(z: torch.Tensor, act: str) -> torch.Tensor:
    """``act(z)`` for one of :data:`ACTIVATIONS` (a new tensor; ``z`` is not modified)."""
    if act == "relu6":
        return z.clamp(0.0, 6.0)
    if act == "relu":
        return z.clamp_min(0.0)
    return z.clone()


@dataclass(frozen=True, eq=False)
class FoldedConv:
    """A conv + folded batch norm + activation, with its weight laid out for each execution.

    Attributes:
        weight: ``(C_out, C_in // groups, k, k)`` float, odd square ``k``, padding ``k // 2``.
        bias: ``(C_out,)``.
        stride: conv stride (>= 1).
        groups: 1 (dense) or ``C_in == C_out`` (depthwise).
        act: one of :data:`ACTIVATIONS`.

    Raises:
        ValueError: even or non-square kernel, another grouping, a bias of the wrong size, or
            an unknown activation.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    stride: int
    groups: int
    act: str
    col_weight: torch.Tensor = field(init=False, repr=False)  # dense (K*C_in, C_out); dw (K, C)
    map_weight: torch.Tensor = field(init=False, repr=False)  # dense (K, C_in, C_out)

    def __post_init__(self) -> None:
        c_out, c_in_group, k_h, k_w = self.weight.shape
        if k_h != k_w or k_h % 2 == 0:
            raise ValueError(f"FoldedConv needs an odd square kernel; got {k_h}x{k_w}")
        if self.groups not in (1, c_out) or (self.groups == c_out and c_in_group != 1):
            raise ValueError(
                f"FoldedConv supports groups=1 or depthwise (groups == C_out); got groups="
                f"{self.groups} for a weight of shape {tuple(self.weight.shape)}"
            )
        if tuple(self.bias.shape) != (c_out,):
            raise ValueError(f"bias must have shape ({c_out},); got {tuple(self.bias.shape)}")
        if k_h // 2 < self.stride - 1:
            raise ValueError(
                f"FoldedConv with kernel {k_h} and stride {self.stride} would leave inputs that "
                "no output reads; use kernel // 2 >= stride - 1"
            )
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {list(ACTIVATIONS)}; got {self.act!r}")
        taps = self.weight.permute(2, 3, 1, 0)  # (k, k, C_in/groups, C_out), offsets row-major
        if self.depthwise:
            col = taps.reshape(k_h * k_w, c_out)
        else:
            col = taps.reshape(k_h * k_w * c_in_group, c_out)
        object.__setattr__(self, "col_weight", col.contiguous())
        object.__setattr__(
            self, "map_weight", taps.reshape(k_h * k_w, c_in_group, c_out).contiguous()
        )

    @property
    def kernel(self) -> int:
        """Kernel side ``k``."""
        return int(self.weight.shape[-1])

    @property
    def depthwise(self) -> bool:
        """True for a depthwise conv (one filter per channel)."""
        return self.groups > 1

    @property
    def out_channels(self) -> int:
        """``C_out``."""
        return int(self.weight.shape[0])

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation ``z (B, C_out, H', W')`` of ``x (B, C_in, H, W)``, computed densely."""
        return functional.conv2d(
            x, self.weight, self.bias, self.stride, self.kernel // 2, 1, self.groups
        )


def fold_conv_bn(conv: nn.Conv2d, norm: nn.BatchNorm2d, act: str) -> FoldedConv:
    """Fold eval-mode ``norm`` into ``conv``: ``norm(conv(x)) == conv(x, W') + b'``.

    Raises:
        ValueError: a conv this module cannot run sparsely (padding not ``k // 2``, dilation,
            a bias, even kernel) or an unknown activation.
    """
    k = conv.kernel_size[0]
    if conv.padding != (k // 2, k // 2) or conv.dilation != (1, 1) or conv.bias is not None:
        raise ValueError(
            f"fold_conv_bn needs a bias-free conv with padding k//2 and dilation 1; got {conv}"
        )
    if conv.stride[0] != conv.stride[1]:
        raise ValueError(f"fold_conv_bn needs equal strides; got {conv.stride}")
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # (C_out,)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = norm.bias - norm.running_mean * scale
    return FoldedConv(
        weight.detach().clone(), bias.detach().clone(), conv.stride[0], conv.groups, act
    )


def _unravel(rows: torch.Tensor, height: int, width: int):
    plane = height * width
    return (torch.div(rows, plane, rounding_mode="floor"),
            torch.div(rows % plane, width, rounding_mode="floor"), rows % width)


def _out_range(low: int, high: int, size: int, kernel: int, stride: int) -> tuple[int, int]:
    # outputs o (0 <= o < size) with a window [o*s - k//2, o*s + k//2] meeting [low, high]
    pad = kernel // 2
    return max(0, -((pad - low) // stride)), min(size - 1, (high + pad) // stride)


def reach(
    rows: torch.Tensor, grid: Grid, kernel: int, stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs a set of input sites reaches, and which input each output reads per offset.

    Output ``o`` (of ``grid.down(stride)``) reads inputs ``o * stride + (dy, dx)`` for
    ``dy, dx`` in ``[-k//2, k//2]`` (a dense conv with ``k // 2`` zero padding). Only the
    bounding box of ``rows`` is scanned, so a localised change costs ``O(box)``, not ``O(H*W)``.

    Args:
        rows: ``(P,)`` ascending, non-empty input sites of ``grid`` (the active inputs).

    Returns:
        ``(out_rows (M,), table (M, kernel**2))``: the output sites, ascending, whose window
        holds an active input, and for each, per offset (row-major ``(dy, dx)``, as
        :func:`~edgeinfer.common_sparse.kernel_offsets` and ``weight[:, :, dy, dx]``), ``1 +``
        the index into ``rows`` of the input it reads, or 0 when that input is not active.
    """
    out = grid.down(stride)
    b, y, x = _unravel(rows, grid.height, grid.width)
    oy0, oy1 = _out_range(int(y.min()), int(y.max()), out.height, kernel, stride)
    ox0, ox1 = _out_range(int(x.min()), int(x.max()), out.width, kernel, stride)
    pad = kernel // 2
    top, left = oy0 * stride - pad, ox0 * stride - pad  # window origin, in input coordinates
    height, width = (oy1 - oy0) * stride + kernel, (ox1 - ox0) * stride + kernel
    local = (b * height + y - top) * width + x - left
    mask = torch.zeros(grid.batch * height * width, dtype=torch.float32)
    mask[local] = 1.0
    pooled = functional.max_pool2d(mask.reshape(grid.batch, 1, height, width), kernel, stride)
    hits = torch.nonzero(pooled.reshape(-1)).reshape(-1)  # (M,) in the (B, oh, ow) crop
    ob, ly, lx = _unravel(hits, oy1 - oy0 + 1, ox1 - ox0 + 1)
    out_rows = (ob * out.height + ly + oy0) * out.width + lx + ox0
    lookup = torch.zeros(grid.batch * height * width, dtype=torch.int64)
    lookup[local] = torch.arange(1, rows.numel() + 1)
    corner = (ob * height + ly * stride) * width + lx * stride  # window corner in the crop
    taps = (torch.arange(kernel).reshape(-1, 1) * width + torch.arange(kernel)).reshape(-1)
    index = (corner.reshape(-1, 1) + taps).reshape(-1)
    return out_rows, lookup.index_select(0, index).reshape(-1, kernel * kernel)


def table_to_kernel_map(table: torch.Tensor, n_in: int, kernel: int) -> KernelMap:
    """The :class:`~edgeinfer.common_sparse.KernelMap` of a :func:`reach` table ``(M, K)``."""
    in_rows, out_rows = [], []
    for j in range(table.shape[1]):
        hits = torch.nonzero(table[:, j]).reshape(-1)
        in_rows.append(table[hits, j] - 1)
        out_rows.append(hits)
    return KernelMap(
        tuple(in_rows), tuple(out_rows), kernel_offsets(kernel, 2), n_in, table.shape[0]
    )


def conv_delta(
    layer: FoldedConv, delta: torch.Tensor, rows: torch.Tensor, grid: Grid,
    method: str = "im2col", max_fraction: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The conv (no bias) of an input change, at the outputs it reaches.

    Args:
        delta: ``(P, C_in)`` change of the input at sites ``rows (P,)`` (non-empty, ascending)
            of ``grid``; every other input site is unchanged.
        method: one of :data:`DELTA_METHODS` (see the module docstring).
        max_fraction: give up (return ``None``) when the change covers more than this
            fraction of the input sites or reaches more than this fraction of the output
            sites: the caller then computes the layer densely.

    Returns:
        ``(out_rows (M,), change (M, C_out))``: ``conv(delta_image)`` at the sites of
        ``grid.down(stride)`` it can be non-zero at (it is exactly zero elsewhere), or None.
    """
    kernel, stride = layer.kernel, layer.stride
    if rows.numel() > max_fraction * grid.sites:  # a window reaches at least its own sites
        return None
    if kernel == 1 and stride == 1 and not layer.depthwise:
        return rows, delta @ layer.col_weight
    limit = max_fraction * grid.down(stride).sites
    out_rows, table = reach(rows, grid, kernel, stride)
    if out_rows.numel() > limit:
        return None
    padded = torch.cat((delta.new_zeros(1, delta.shape[1]), delta))  # row 0: "no input"
    if layer.depthwise:
        change = delta.new_zeros(out_rows.numel(), delta.shape[1])
        for j in range(table.shape[1]):  # (M, C) per offset: no (M, K, C) temporary
            change.addcmul_(padded.index_select(0, table[:, j]), layer.col_weight[j])
        return out_rows, change
    if method == "kernel_map":
        kernel_map = table_to_kernel_map(table, rows.numel(), kernel)
        return out_rows, sparse_conv(delta, layer.map_weight, kernel_map, out_rows.numel())
    patches = padded.index_select(0, table.reshape(-1)).reshape(out_rows.numel(), -1)
    return out_rows, patches @ layer.col_weight  # (M, K*C_in) @ (K*C_in, C_out)


def update_layer(
    layer: FoldedConv, cache: torch.Tensor, delta: torch.Tensor, rows: torch.Tensor,
    grid: Grid, method: str = "im2col", max_fraction: float = 1.0,
    undo: list | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Apply an input change to one layer's cached pre-activation, in place.

    Args:
        cache: ``(B*H'*W', C_out)`` pre-activation ``z`` of the layer's current input; the rows
            the change reaches are updated in place (the runner owns this tensor).
        delta, rows, grid, method, max_fraction: as in :func:`conv_delta`.
        undo: when given, ``(cache, rows, old rows)`` is appended before ``cache`` changes, so
            a caller can put the rows back (``cache.index_copy_(0, rows, old)``).

    Returns:
        ``(out_rows (M,), out_delta (M, C_out))``: the change of ``act(z)`` at every output
        site the input change reaches (zero everywhere else); None (and ``cache`` untouched)
        when the change reaches more than ``max_fraction`` of the outputs.
    """
    result = conv_delta(layer, delta, rows, grid, method, max_fraction)
    if result is None:
        return None
    out_rows, change = result
    old = cache.index_select(0, out_rows)
    new = old + change
    if undo is not None:
        undo.append((cache, out_rows, old))
    cache.index_copy_(0, out_rows, new)
    if layer.act == "none":
        return out_rows, change
    return out_rows, activate(new, layer.act) - activate(old, layer.act)
