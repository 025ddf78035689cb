"""MobileNetV2 backbone (inverted residuals, linear bottlenecks) written for temporal shift.

Every block takes ``(x, shifted)``: ``x`` feeds the identity path, ``shifted`` (``x`` after the
temporal shift, or ``x`` itself for TSN) feeds the residual branch. Only blocks with an identity
connection are shift sites ("residual shift"): shifting the input of a block without a skip
would destroy the spatial features it passes on.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["InvertedResidual", "MobileNetV2Backbone", "make_divisible"]

# (expansion t, output channels c, repeats n, first stride s), per stage
_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Round ``channels`` to a multiple of ``divisor``, never dropping more than 10 %."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise -> 1x1 linear project; identity added when shapes match.

    ``forward(x, shifted)``: ``x, shifted (B, C_in, H, W)`` -> ``(B, C_out, H/stride, W/stride)``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn(c_in, hidden, 1))
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   _conv_bn(hidden, c_out, 1, act=False)]
        self.branch = nn.Sequential(*layers)
        self.in_channels = c_in
        self.stride = stride
        self.has_identity = stride == 1 and c_in == c_out
        self.shift_site = self.has_identity

    def forward(self, x: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
        return self.combine(x, self.branch(shifted))

    def combine(self, x: torch.Tensor, branch_out: torch.Tensor) -> torch.Tensor:
        """The block output from its input ``x`` and ``branch(shifted)``: the identity added."""
        return x + branch_out if self.has_identity else branch_out


class MobileNetV2Backbone(nn.Module):
    """MobileNetV2 features: ``stem``, ``blocks`` (``forward(x, shifted)``), ``neck``.

    ``stem(x (B, 3, H, W))`` -> ``(B, C0, H/2, W/2)``; after the blocks and the ``neck`` (a
    1x1 conv) the map has ``num_features`` channels at stride 32.
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c_in = make_divisible(32 * width)
        self.stem = _conv_bn(3, c_in, 3, stride=2)
        self.stem_stride = 2
        blocks = []
        for expansion, channels, repeats, first_stride in _STAGES:
            c_out = make_divisible(channels * width)
            for index in range(repeats):
                stride = first_stride if index == 0 else 1
                blocks.append(InvertedResidual(c_in, c_out, stride, expansion))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.num_features = make_divisible(1280 * max(1.0, width))
        self.neck = _conv_bn(c_in, self.num_features, 1)
