"""Slow, obviously correct references and helpers for the video tests."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VAR_FLOOR", "calibrate", "roll_shift"]

VAR_FLOOR = 1e-2


def roll_shift(x: torch.Tensor, n_segment: int, fold_div: int, mode: str) -> torch.Tensor:
    """Temporal shift by ``torch.roll`` along time, then zeroing the frames that wrapped round."""
    frames, channels, height, width = x.shape
    fold = channels // fold_div
    clips = x.reshape(frames // n_segment, n_segment, channels, height, width)
    out = clips.clone()
    previous = torch.roll(clips, shifts=1, dims=1)
    previous[:, 0] = 0  # frame 0 has no predecessor
    if mode == "causal":
        out[:, :, :fold] = previous[:, :, :fold]
    else:
        following = torch.roll(clips, shifts=-1, dims=1)
        following[:, -1] = 0  # the last frame has no successor
        out[:, :, :fold] = following[:, :, :fold]
        out[:, :, fold : 2 * fold] = previous[:, :, fold : 2 * fold]
    return out.reshape(frames, channels, height, width)


def calibrate(model: nn.Module, clip: torch.Tensor, seed: int = 0) -> nn.Module:
    """Give a fresh model realistic O(1) activations, then put it in eval mode.

    Batch-norm statistics are set to the exact averages over ``clip`` (one train-mode pass with
    cumulative averaging) and the classifier gets unit-scale weights, so per-frame logits are
    O(1) and tolerances mean something. Variances are floored at ``VAR_FLOOR``: a channel that is
    nearly dead on a few tiny frames would otherwise divide rounding noise by ~1e-3 and turn
    float32 ulps (batch of T frames vs batch of 1 sum in another order) into 1e-4 errors.
    """
    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None
            layer.weight.data = 0.5 + torch.rand(layer.weight.shape, generator=generator)
            layer.bias.data = 0.1 * torch.randn(layer.bias.shape, generator=generator)
        elif isinstance(layer, nn.Linear):
            scale = layer.in_features**-0.5
            layer.weight.data = scale * torch.randn(layer.weight.shape, generator=generator)
    model.train()
    with torch.no_grad():
        model(clip)
        for layer in model.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.running_var.clamp_(min=VAR_FLOOR)
    return model.eval()
