"""The part of a backbone :class:`~edgeinfer.video.DeltaRunner` runs on changed pixels.

The leading stages whose every layer is a conv + batch norm (+ activation) with nothing that
mixes in other frames or skips layers: MobileNetV2's stem conv and the inverted-residual blocks
before the first identity path / temporal shift, ResNet's 7x7 stem conv. Each layer is folded
(batch norm into the conv) into a :class:`~edgeinfer.video.delta_conv.FoldedConv`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .delta_conv import FoldedConv, fold_conv_bn
from .mobilenetv2 import MobileNetV2Backbone
from .resnet import ResNetBackbone

__all__ = ["DeltaPrefix", "delta_prefix", "max_delta_stages"]


@dataclass(frozen=True, eq=False)
class DeltaPrefix:
    """The sparse part of a backbone: ``layers`` (named ``names``), then ``tail`` (dense, e.g.
    ResNet's max-pool) and the blocks from ``first_block`` on, run densely."""

    layers: tuple[FoldedConv, ...]
    names: tuple[str, ...]
    tail: nn.Module
    first_block: int


def _conv_bn_act(seq: nn.Module, name: str) -> FoldedConv:
    if not isinstance(seq, nn.Sequential) or not isinstance(seq[0], nn.Conv2d) \
            or not isinstance(seq[1], nn.BatchNorm2d):
        raise ValueError(f"{name} is not a (conv, batch norm[, activation]) sequence: {seq}")
    act = "none"
    if len(seq) > 2:
        act = "relu6" if isinstance(seq[2], nn.ReLU6) else "relu"
    return fold_conv_bn(seq[0], seq[1], act)


def max_delta_stages(backbone: nn.Module) -> int:
    """How many leading stages can run on changes: the stem, then (MobileNetV2) each leading
    block with neither an identity path nor a temporal shift (a shift mixes in the previous
    frame's features, so its input changes everywhere).

    Raises:
        TypeError: a backbone other than MobileNetV2 / ResNet.
    """
    if isinstance(backbone, ResNetBackbone):
        return 1
    if not isinstance(backbone, MobileNetV2Backbone):
        raise TypeError(
            f"backbone must be a MobileNetV2Backbone or ResNetBackbone; got {type(backbone)}"
        )
    stages = 1
    for block in backbone.blocks:
        if block.has_identity or block.shift_site:
            break
        stages += 1
    return stages


def delta_prefix(backbone: nn.Module, stages: int | None = None) -> DeltaPrefix:
    """Fold the first ``stages`` stages of an eval-mode ``backbone`` for :func:`update_layer`.

    Raises:
        TypeError: unsupported backbone.
        ValueError: ``stages`` above :func:`max_delta_stages` (the limit and why is said).
    """
    limit = max_delta_stages(backbone)
    stages = limit if stages is None else stages
    if not 1 <= stages <= limit:
        raise ValueError(
            f"stages must be in [1, {limit}] for this backbone; got {stages}. Stage "
            f"{limit + 1} is a block with an identity path or a temporal shift (or ResNet's "
            "first block after the max-pool), which this runner computes densely"
        )
    if isinstance(backbone, ResNetBackbone):
        stem = _conv_bn_act(backbone.stem[:3], "stem")
        return DeltaPrefix((stem,), ("stem",), backbone.stem[3:], 0)
    layers, names = [_conv_bn_act(backbone.stem, "stem")], ["stem"]
    for index in range(stages - 1):
        for part, seq in enumerate(backbone.blocks[index].branch):
            layers.append(_conv_bn_act(seq, f"blocks.{index}.branch.{part}"))
            names.append(f"blocks.{index}.{part}")
    return DeltaPrefix(tuple(layers), tuple(names), nn.Identity(), stages - 1)
