"""MinkUNet: a sparse residual U-Net over voxels (per-voxel logits on the input sites).

Layout (``c = config.stage_channels()``, 9 entries scaled by ``width``)::

    stem    2 x (3x3x3 sub-manifold conv-BN-ReLU)            in -> c0      stride 1
    down i  k2s2 conv-BN-ReLU + blocks x residual            c(i-1) -> ci  stride 2^i, i=1..4
    up j    k2s2 transposed conv-BN-ReLU, concat skip,       c(3+j) -> c(4+j), j=1..4
            + blocks x residual                              (skips: c3, c2, c1, c0)
    head    Linear(c8 -> num_classes) per voxel
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..tensor import SparseTensor
from .blocks import ConvBlock, DownStage, UpStage

__all__ = ["MinkUNet", "UNetConfig", "UNetTrunk", "check_sparse_input"]

DEFAULT_CHANNELS = (32, 32, 64, 128, 256, 256, 128, 96, 96)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class UNetConfig:
    """Size of a MinkUNet / SPVCNN.

    Attributes:
        in_channels: input features per voxel (per point for SPVCNN).
        num_classes: logits per output site.
        width: multiplier of ``channels`` (each rounded, at least 1).
        blocks: residual blocks per down and per up stage (>= 1).
        channels: the 9-entry plan ``(stem, down1..4, up1..4)`` at ``width=1``.
    """

    in_channels: int
    num_classes: int
    width: float = 1.0
    blocks: int = 2
    channels: tuple[int, ...] = DEFAULT_CHANNELS

    def __post_init__(self) -> None:
        for name in ("in_channels", "num_classes", "blocks"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"UNetConfig.{name} must be an int >= 1; got {value!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, int | float) \
                or not math.isfinite(self.width) or self.width <= 0:
            raise ValueError(
                f"UNetConfig.width must be a finite number > 0 (e.g. 0.5, 1.0); got "
                f"{self.width!r}"
            )
        channels = tuple(self.channels) if isinstance(self.channels, tuple | list) else ()
        if len(channels) != 9 or not all(_is_int(c) and c >= 1 for c in channels):
            raise ValueError(
                "UNetConfig.channels must be 9 ints >= 1 (stem, down1..4, up1..4); got "
                f"{self.channels!r}"
            )
        object.__setattr__(self, "channels", channels)

    def stage_channels(self) -> tuple[int, ...]:
        """The 9 channel counts scaled by ``width`` (rounded, at least 1)."""
        return tuple(max(1, round(c * self.width)) for c in self.channels)


def check_sparse_input(input: object, channels: int, model: str) -> SparseTensor:
    """``input`` if it is a ``SparseTensor`` with ``channels`` feature columns.

    Raises:
        TypeError: not a SparseTensor. ValueError: another channel count.
    """
    if not isinstance(input, SparseTensor):
        raise TypeError(
            f"{model} expects a SparseTensor (build one with sparse_quantize + "
            f"sparse_collate); got {type(input).__name__}"
        )
    if input.feats.shape[1] != channels:
        raise ValueError(
            f"{model} was built with in_channels={channels}; got a SparseTensor with "
            f"{input.feats.shape[1]} feature channels. Build it with "
            f"in_channels={input.feats.shape[1]} or change the features"
        )
    return input


class UNetTrunk(torch.nn.Module):
    """Stem, 4 down stages and 4 up stages of ``config`` (no head)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        c, blocks = config.stage_channels(), config.blocks
        self.stem = torch.nn.Sequential(
            ConvBlock(config.in_channels, c[0]), ConvBlock(c[0], c[0])
        )
        self.down = torch.nn.ModuleList(DownStage(c[i], c[i + 1], blocks) for i in range(4))
        self.up = torch.nn.ModuleList(
            UpStage(c[4 + j], c[3 - j], c[5 + j], blocks) for j in range(4)
        )

    def encode(self, input: SparseTensor) -> list[SparseTensor]:
        """Stem and down stages: ``[x0 (stride 1), x1 (2), x2 (4), x3 (8), x4 (16)]``."""
        levels = [self.stem(input)]
        for stage in self.down:
            levels.append(stage(levels[-1]))
        return levels

    def decode(self, levels: list[SparseTensor], start: int = 0, stop: int = 4,
               input: SparseTensor | None = None) -> SparseTensor:
        """Up stages ``start..stop-1`` from ``input`` (default ``levels[4]``) with the skips."""
        out = levels[4 - start] if input is None else input
        for j in range(start, stop):
            out = self.up[j](out, levels[3 - j])
        return out


class MinkUNet(torch.nn.Module):
    """Sparse residual U-Net: ``SparseTensor (N, in_channels)`` -> logits ``(N, num_classes)``.

    The output has the input's coordinates in the input's row order (the last up stage
    lands on the stride-1 sites of the input), stride 1 and the input's cache.

    Raises (in ``forward``): TypeError for a non-SparseTensor input, ValueError for a
    channel mismatch or an input with stride other than 1.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"MinkUNet needs a UNetConfig; got {type(config).__name__}")
        self.config = config
        self.trunk = UNetTrunk(config)
        self.classifier = torch.nn.Linear(config.stage_channels()[8], config.num_classes)

    def forward(self, input: SparseTensor) -> SparseTensor:
        """Per-voxel logits on ``input``'s sites."""
        input = check_sparse_input(input, self.config.in_channels, "MinkUNet")
        if input.stride != (1, 1, 1):
            raise ValueError(
                f"MinkUNet expects a stride-1 input (freshly voxelised); got stride "
                f"{input.stride}"
            )
        return self.run(input)

    def run(self, input: SparseTensor) -> SparseTensor:
        """The network without input checks (``forward`` checks, then calls this)."""
        out = self.trunk.decode(self.trunk.encode(input))
        return out.replace(feats=self.classifier(out.feats))
