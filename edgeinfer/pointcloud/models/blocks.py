"""Building blocks of the point-cloud U-Nets: conv-BN-ReLU, residual blocks, down/up stages.

Blocks touch a tensor only through its ``feats`` and ``replace(feats=...)`` (plus the layers
they hold), so the same block code runs on every ``SparseTensor``. Every shortcut with a
channel change is a ``1x1x1`` sub-manifold conv: it keeps all sites (a strided ``1x1x1``
conv would drop them, and the core rejects it).
"""

from __future__ import annotations

import torch

from .. import nn as spnn
from ..tensor import SparseTensor

__all__ = [
    "ConvBlock", "DownStage", "ResidualBlock", "UpStage", "add_feats", "concat_feats", "conv_norm",
]


def add_feats(first: SparseTensor, second: SparseTensor) -> SparseTensor:
    """``first.feats + second.feats`` on ``first``'s sites (both on the same sites, same order).

    Raises:
        ValueError: the two tensors have different row counts (not the same sites).
    """
    if first.feats.shape != second.feats.shape:
        raise ValueError(
            "add_feats needs two tensors on the same sites with the same channels; got feats "
            f"{tuple(first.feats.shape)} and {tuple(second.feats.shape)}"
        )
    return first.replace(feats=first.feats + second.feats)


def concat_feats(first: SparseTensor, second: SparseTensor) -> SparseTensor:
    """``cat([first.feats, second.feats], dim=1)`` on ``first``'s sites: ``(N, C1 + C2)``.

    Raises:
        ValueError: different row counts (the skip does not sit on the upsampled sites).
    """
    if first.feats.shape[0] != second.feats.shape[0]:
        raise ValueError(
            "concat_feats needs two tensors on the same sites; got "
            f"{first.feats.shape[0]} and {second.feats.shape[0]} rows"
        )
    return first.replace(feats=torch.cat([first.feats, second.feats], dim=1))


def conv_norm(conv: torch.nn.Module, norm: torch.nn.Module, input: SparseTensor, *,
              initial: SparseTensor | None = None,
              act: torch.nn.Module | None = None) -> SparseTensor:
    """``act(norm(conv(input)) + initial)`` (``initial``/``act`` optional), with the norm
    folded into the convolution where it can be.

    When ``conv`` is a ``Conv3d`` and ``norm`` a ``BatchNorm`` in eval mode, the norm's scale
    and shift go into the kernel and bias, ``initial`` starts the output and a ReLU is applied
    on the convolution's write, so the convolution's output is the only pass over the
    features. Otherwise (training, or the spconv mirror's layers) the layers run one after
    the other. Both give the same values up to float rounding.
    """
    folded = (
        norm.folded(conv.kernel, conv.bias)
        if isinstance(conv, spnn.Conv3d) and isinstance(norm, spnn.BatchNorm)
        and isinstance(input, SparseTensor) else None
    )
    if folded is None:
        out = norm(conv(input))
        if initial is not None:
            out = add_feats(out, initial)
        return out if act is None else act(out)
    start = None if initial is None else initial.feats
    if type(act) is spnn.ReLU:  # fused into the convolution's last write (or one pass after)
        return conv(input, folded=folded, initial=start, relu=True)
    out = conv(input, folded=folded, initial=start)
    return out if act is None else act(out)


class ConvBlock(torch.nn.Module):
    """``Conv3d -> BatchNorm -> ReLU``; ``stride=2, kernel_size=2`` (optionally transposed)
    for the down/up steps of a U-Net, ``kernel_size=3, stride=1`` for a sub-manifold step."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, *, transposed: bool = False) -> None:
        super().__init__()
        self.conv = spnn.Conv3d(in_channels, out_channels, kernel_size, stride,
                                transposed=transposed)
        self.norm = spnn.BatchNorm(out_channels)
        self.act = spnn.ReLU()

    def forward(self, input: SparseTensor) -> SparseTensor:
        """``feats (N, C_in)`` -> ``(M, C_out)`` (``M = N`` unless strided/transposed)."""
        return conv_norm(self.conv, self.norm, input, act=self.act)


class ResidualBlock(torch.nn.Module):
    """Two ``3x3x3`` sub-manifold conv-BN pairs plus a shortcut, then ReLU (same sites).

    The shortcut is the identity when ``in_channels == out_channels``, else a ``1x1x1``
    sub-manifold conv followed by BatchNorm.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = spnn.Conv3d(in_channels, out_channels, 3)
        self.norm1 = spnn.BatchNorm(out_channels)
        self.conv2 = spnn.Conv3d(out_channels, out_channels, 3)
        self.norm2 = spnn.BatchNorm(out_channels)
        self.act = spnn.ReLU()
        self.shortcut = (
            torch.nn.Identity() if in_channels == out_channels else torch.nn.Sequential(
                spnn.Conv3d(in_channels, out_channels, 1), spnn.BatchNorm(out_channels)
            )
        )

    def forward(self, input: SparseTensor) -> SparseTensor:
        """``feats (N, C_in)`` -> ``(N, C_out)`` on the same sites."""
        shortcut = self.shortcut
        if isinstance(shortcut, torch.nn.Sequential):
            shortcut = conv_norm(shortcut[0], shortcut[1], input)
        else:
            shortcut = shortcut(input)
        hidden = conv_norm(self.conv1, self.norm1, input, act=self.act)
        return conv_norm(self.conv2, self.norm2, hidden, initial=shortcut, act=self.act)


def _residual_stack(in_channels: int, out_channels: int, blocks: int) -> torch.nn.Sequential:
    channels = [in_channels] + [out_channels] * blocks
    return torch.nn.Sequential(
        *(ResidualBlock(channels[i], channels[i + 1]) for i in range(blocks))
    )


class DownStage(torch.nn.Module):
    """Halve the resolution (``k2 s2`` conv-BN-ReLU), then ``blocks`` residual blocks."""

    def __init__(self, in_channels: int, out_channels: int, blocks: int) -> None:
        super().__init__()
        self.down = ConvBlock(in_channels, in_channels, kernel_size=2, stride=2)
        self.blocks = _residual_stack(in_channels, out_channels, blocks)

    def forward(self, input: SparseTensor) -> SparseTensor:
        """Stride ``s`` ``(N, C_in)`` -> stride ``2s`` ``(M, C_out)``, ``M <= N``."""
        return self.blocks(self.down(input))


class UpStage(torch.nn.Module):
    """Double the resolution (``k2 s2`` transposed conv-BN-ReLU onto the skip's sites), concat
    the skip features, then ``blocks`` residual blocks."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 blocks: int) -> None:
        super().__init__()
        self.up = ConvBlock(in_channels, out_channels, kernel_size=2, stride=2, transposed=True)
        self.blocks = _residual_stack(out_channels + skip_channels, out_channels, blocks)

    def forward(self, input: SparseTensor, skip: SparseTensor) -> SparseTensor:
        """Stride ``2s`` ``(M, C_in)`` and the stride-``s`` skip ``(N, C_skip)`` -> ``(N, C_out)``.

        The skip must be the tensor the matching down stage received (same cache), so the
        transposed conv lands on its sites in its row order.
        """
        return self.blocks(concat_feats(self.up(input), skip))
