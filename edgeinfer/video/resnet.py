"""ResNet-18 / ResNet-50 backbones (BasicBlock / Bottleneck) written for temporal shift.

Every block takes ``(x, shifted)``: ``x`` feeds the shortcut, ``shifted`` feeds the residual
branch's first convolution. Every block is a shift site ("residual shift"): the shortcut keeps
the frame's own features whatever the shift moves.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNetBackbone", "resnet_depths"]

_DEPTHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


def resnet_depths(arch: str) -> tuple[str, tuple[int, int, int, int]]:
    """``(block kind, blocks per stage)`` of a ResNet name.

    Raises:
        ValueError: an unknown name (the supported ones are listed).
    """
    if arch not in _DEPTHS:
        raise ValueError(f"arch must be one of {sorted(_DEPTHS)}; got {arch!r}")
    return _DEPTHS[arch]


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))


class _ResidualBlock(nn.Module):
    """``relu(shortcut(x) + branch(shifted))``: the shift feeds only the residual branch."""

    expansion = 1

    def _finish(self, branch: nn.Sequential, c_in: int, c_out: int, stride: int) -> None:
        self.branch = branch
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)
        self.in_channels, self.out_channels, self.stride = c_in, c_out, stride
        self.shift_site = True

    def forward(self, x: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
        return self.combine(x, self.branch(shifted))

    def combine(self, x: torch.Tensor, branch_out: torch.Tensor) -> torch.Tensor:
        """The block output from its input ``x`` and ``branch(shifted)``."""
        return self.relu(self.shortcut(x) + branch_out)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs. ``forward(x, shifted)``: ``(B, C_in, H, W)`` -> ``(B, C_out, H/s, W/s)``."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        c_out = planes * self.expansion
        branch = nn.Sequential(
            *_conv_bn(c_in, planes, 3, stride), nn.ReLU(inplace=True), *_conv_bn(planes, c_out, 3)
        )
        self._finish(branch, c_in, c_out, stride)


class Bottleneck(_ResidualBlock):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4; same ``forward`` as BasicBlock."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        c_out = planes * self.expansion
        branch = nn.Sequential(
            *_conv_bn(c_in, planes, 1), nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3, stride), nn.ReLU(inplace=True),
            *_conv_bn(planes, c_out, 1),
        )
        self._finish(branch, c_in, c_out, stride)


class ResNetBackbone(nn.Module):
    """ResNet features: ``stem`` (7x7/2 conv + 3x3/2 max-pool), ``blocks``, ``neck`` (identity).

    The final map has ``num_features`` channels at stride 32.
    """

    def __init__(self, arch: str = "resnet18", width: float = 1.0) -> None:
        super().__init__()
        kind, depths = resnet_depths(arch)
        block_type = BasicBlock if kind == "basic" else Bottleneck
        base = max(1, round(64 * width))
        self.stem = nn.Sequential(
            *_conv_bn(3, base, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        self.stem_stride = 4
        blocks: list[nn.Module] = []
        c_in = base
        for stage, repeats in enumerate(depths):
            planes = base * 2**stage
            for index in range(repeats):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(block_type(c_in, planes, stride))
                c_in = planes * block_type.expansion
        self.blocks = nn.ModuleList(blocks)
        self.neck = nn.Identity()
        self.num_features = c_in
