"""The TSM forward passes as plain functions over a backbone's parts and explicit buffers.

A backbone exposes ``stem``, ``blocks`` (each ``block(x, shifted)`` with a ``shift_site`` flag and
``in_channels``/``stride``), ``neck`` and ``stem_stride``. Two paths share it:

- offline: :func:`clip_frame_logits` runs ``(N*T, 3, H, W)`` with :func:`temporal_shift` at each
  shift site;
- online: :func:`stream_step` runs one frame ``(N, 3, H, W)`` with :func:`shift_step`, taking
  and returning one ``(N, fold, h, w)`` buffer per shift site, so it can be exported with the
  buffers as graph inputs and outputs. With ``in_place=True`` (eager inference only) each
  shift site swaps the buffer into its block input instead of concatenating a new tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from .shift import shift_fold, shift_step, temporal_shift

__all__ = ["buffer_shapes", "clip_frame_logits", "shift_sites", "stream_step"]


def shift_sites(backbone: nn.Module) -> list[int]:
    """Indices of the backbone's blocks whose residual branch is shifted."""
    return [index for index, block in enumerate(backbone.blocks) if block.shift_site]


def buffer_shapes(
    backbone: nn.Module, fold_div: int, batch: int, height: int, width: int
) -> list[tuple[int, int, int, int]]:
    """Shape ``(batch, fold, h, w)`` of each shift site's buffer for ``(batch, 3, height, width)``.

    Every conv/pool with stride ``s`` here pads ``kernel // 2``, so a side ``n`` becomes
    ``ceil(n / s)``.
    """
    size_h, size_w = _down(height, backbone.stem_stride), _down(width, backbone.stem_stride)
    shapes = []
    for block in backbone.blocks:
        if block.shift_site:
            fold = shift_fold(block.in_channels, fold_div)
            shapes.append((batch, fold, size_h, size_w))
        size_h, size_w = _down(size_h, block.stride), _down(size_w, block.stride)
    return shapes


def _down(size: int, stride: int) -> int:
    return (size - 1) // stride + 1


def _pool_classify(backbone: nn.Module, head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # x (B, C, h, w) -> neck -> global average -> head -> (B, num_classes)
    return head(backbone.neck(x).mean(dim=(2, 3)))


def clip_frame_logits(
    backbone: nn.Module, head: nn.Module, clip: torch.Tensor, *, n_segment: int,
    shift: str, fold_div: int,
) -> torch.Tensor:
    """Per-frame logits of stacked clips.

    Args:
        backbone: see the module docstring.
        head: ``(B, F) -> (B, num_classes)`` (dropout + linear).
        clip: ``(N*T, 3, H, W)`` with ``T = n_segment``.
        shift: ``"bidirectional"``, ``"causal"`` or ``"none"`` (no shift: TSN).
        fold_div: see :func:`temporal_shift`.

    Returns:
        ``(N, T, num_classes)``.
    """
    x = backbone.stem(clip)
    for block in backbone.blocks:
        shifted = x
        if shift != "none" and block.shift_site:
            shifted = temporal_shift(x, n_segment, fold_div, shift)
        x = block(x, shifted)
    logits = _pool_classify(backbone, head, x)
    return logits.reshape(clip.shape[0] // n_segment, n_segment, logits.shape[-1])


def stream_step(
    backbone: nn.Module, head: nn.Module, frame: torch.Tensor,
    buffers: tuple[torch.Tensor, ...], *, fold_div: int, in_place: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One frame of the causal TSM.

    Args:
        frame: ``(N, 3, H, W)``, frame ``t`` of ``N`` streams.
        buffers: one ``(N, fold, h, w)`` per shift site (see :func:`buffer_shapes`), holding
            frame ``t-1``'s first ``fold`` channels there; zeros before the first frame. Empty
            for a model without shift (TSN). Not modified.
        in_place: False: :func:`shift_step` (slicing + ``cat``: traces and exports as plain
            nodes, differentiable). True: :func:`_swap_shift`, the same numbers for three
            ``fold``-channel copies per site instead of a new full-size tensor; it writes into
            the backbone's intermediate activations (and restores them), so only for eager
            inference (no autograd, no tracing; the shapes must already be checked).

    Returns:
        ``(logits (N, num_classes), new_buffers)`` with ``new_buffers`` shaped like ``buffers``.
    """
    x = backbone.stem(frame)
    remaining = iter(buffers)
    new_buffers = []
    for block in backbone.blocks:
        if not (buffers and block.shift_site):
            x = block(x, x)
        elif in_place:
            x, cached = _swap_shift(block, x, next(remaining))
            new_buffers.append(cached)
        else:
            shifted, cached = shift_step(x, next(remaining), fold_div)
            new_buffers.append(cached)
            x = block(x, shifted)
    return _pool_classify(backbone, head, x), tuple(new_buffers)


def _swap_shift(
    block: nn.Module, x: torch.Tensor, buffer: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # x (N, C, h, w), an activation nothing reads while this block runs (it is restored
    # bit for bit before returning); buffer (N, fold, h, w)
    fold = buffer.shape[1]
    head = x[:, :fold]
    cached = head.clone()  # frame t's channels: the next buffer
    head.copy_(buffer)  # x is now the shifted input
    branch_out = block.branch(x)
    head.copy_(cached)  # x again, for the identity / shortcut
    return block.combine(x, branch_out), cached
