"""Changed-box convolution: the delta of a layer computed densely on the box around a change.

The tile-skipping counterpart of :mod:`edgeinfer.video.delta_conv`. A static camera's change is
usually one compact region (an object moving), so instead of gathering the changed sites and
their kernel-map neighbours row by row, a layer's input change is kept as a small dense image
over the bounding box of the change (zeros inside the box where nothing changed) and

1. :func:`out_box` gives the output box: every output whose window meets the input box (dense-
   conv semantics with ``k // 2`` zero padding, clipped to the output grid);
2. :func:`conv_box` convolves the change, zero-padded to exactly the windows of those outputs
   (padding that stands both for unchanged inputs and for the map's own zero padding), with no
   padding of its own: ``conv(x + d) = conv(x) + conv(d)``, and ``conv(d)`` is exactly zero
   outside the output box;
3. :func:`update_box` adds it, in place, to the box of the cached pre-activation map and returns
   the change of the activation there, the next layer's input change over the output box.

Every unchanged tile outside the box is skipped and all the work is ordinary dense convolution,
slicing and elementwise ops on the box (no gathers, no scatters, no index tables). The price is
the unchanged sites inside the box: a change scattered over the frame has a box as large as the
frame (the runner then recomputes densely). Exact up to float rounding, like the other methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional

from .delta_conv import FoldedConv, activate

__all__ = ["Box", "change_box", "conv_box", "out_box", "update_box"]


@dataclass(frozen=True)
class Box:
    """Rows ``[top, bottom)`` and columns ``[left, right)`` of one image of a feature map."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        """``bottom - top``."""
        return self.bottom - self.top

    @property
    def width(self) -> int:
        """``right - left``."""
        return self.right - self.left

    @property
    def sites(self) -> int:
        """Pixels in the box."""
        return self.height * self.width


def change_box(mask: torch.Tensor, threshold: float | None = None) -> Box | None:
    """The bounding box of the True pixels of a bool ``mask (H, W)`` or, given ``threshold``,
    of the pixels where a float score map ``mask (H, W)`` exceeds it; None when there are none.
    """
    if threshold is None:
        flags = mask.view(torch.uint8)  # max over uint8 is several times faster than any()
        row_flags, col_flags = flags.amax(dim=1), flags.amax(dim=0)
    else:  # row and column maxima first: two small compares instead of one per pixel
        row_flags, col_flags = mask.amax(dim=1) > threshold, mask.amax(dim=0) > threshold
    rows = torch.nonzero(row_flags).reshape(-1)
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(col_flags).reshape(-1)
    return Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def _out_span(start: int, stop: int, size: int, kernel: int, stride: int) -> tuple[int, int]:
    # outputs o in [0, size) whose window [o*s - k//2, o*s + k//2] meets inputs [start, stop)
    pad = kernel // 2
    return max(0, -((pad - start) // stride)), min(size, (stop - 1 + pad) // stride + 1)


def out_box(box: Box, out_height: int, out_width: int, kernel: int, stride: int) -> Box:
    """The outputs (of an ``out_height x out_width`` grid) that read an input in ``box``."""
    top, bottom = _out_span(box.top, box.bottom, out_height, kernel, stride)
    left, right = _out_span(box.left, box.right, out_width, kernel, stride)
    return Box(top, bottom, left, right)


def conv_box(layer: FoldedConv, delta: torch.Tensor, box: Box, out: Box) -> torch.Tensor:
    """``conv(delta image)`` (no bias) at the outputs ``out``.

    Args:
        delta: ``(N, C_in, box.height, box.width)``, the input change over ``box``; every input
            outside the box is unchanged.
        out: :func:`out_box` of ``box`` (it must hold every output the box reaches).

    Returns:
        ``(N, C_out, out.height, out.width)``.
    """
    stride, pad = layer.stride, layer.kernel // 2
    batch, channels, height, width = delta.shape
    if layer.kernel == 1 and stride == 1 and not layer.depthwise:  # a GEMM over the pixels
        rows = delta.permute(0, 2, 3, 1).reshape(-1, channels)  # a view when channels_last
        change = rows @ layer.col_weight  # (N*h*w, C_out)
        return change.reshape(batch, height, width, -1).permute(0, 3, 1, 2)
    # the inputs the outputs' windows cover, relative to the box (>= 0 by the choice of out)
    top, left = box.top - (out.top * stride - pad), box.left - (out.left * stride - pad)
    bottom = (out.bottom - 1) * stride + pad + 1 - box.bottom
    right = (out.right - 1) * stride + pad + 1 - box.right
    assert min(top, left, bottom, right) >= 0, (box, out)
    # channels_last: the fast conv kernels (F.pad keeps the layout, in one allocate-and-fill)
    delta = delta.contiguous(memory_format=torch.channels_last)
    padded = functional.pad(delta, (left, right, top, bottom))
    return functional.conv2d(padded, layer.weight, None, stride, 0, 1, layer.groups)


def update_box(
    layer: FoldedConv, cache: torch.Tensor, delta: torch.Tensor, box: Box, out: Box,
    undo: list | None = None,
) -> torch.Tensor:
    """Add the conv of an input change to the box ``out`` of a cached pre-activation, in place.

    Args:
        cache: ``(N, C_out, H', W')`` pre-activation ``z`` of the layer's current input (a view
            of the runner's map is fine); its ``out`` box is updated in place.
        delta, box, out: as in :func:`conv_box`.
        undo: when given, ``(window, its old values)`` is appended before the window changes,
            so a caller can put it back (``window.copy_(old)``).

    Returns:
        ``(N, C_out, out.height, out.width)``: the change of ``act(z)`` on the box ``out`` (zero
        everywhere else).
    """
    change = conv_box(layer, delta, box, out)
    window = cache[:, :, out.top : out.bottom, out.left : out.right]
    if undo is not None:
        undo.append((window, window.clone()))
    if layer.act == "none":
        window.add_(change)
        return change
    old = activate(window, layer.act)
    window.add_(change)
    return activate(window, layer.act).sub_(old)
