"""Temporal shift: move a fraction of the channels one frame along time, for free.

A clip is stored frame-major as ``(N*T, C, H, W)`` (``N`` clips of ``T`` frames each), so a 2-D
backbone sees ordinary images. With ``fold = C // fold_div``:

- ``"bidirectional"`` (offline): channels ``[0, fold)`` take the *next* frame's values,
  ``[fold, 2*fold)`` the *previous* frame's; zeros enter at the clip ends; the rest stay put.
- ``"causal"`` (online): channels ``[0, fold)`` take the previous frame's values (zeros at
  ``t = 0``); nothing comes from the future, so a stream can be run one frame at a time with
  :func:`shift_step` and a cached ``(N, fold, H, W)`` buffer.

Everything is slicing plus ``torch.cat`` (no in-place writes, no scatter), so the ops trace and
export as plain graph nodes.
"""

from __future__ import annotations

import torch

__all__ = ["SHIFT_MODES", "check_fold", "shift_fold", "shift_step", "temporal_shift"]

SHIFT_MODES: tuple[str, ...] = ("bidirectional", "causal")


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return value


def _check_mode(mode: object) -> str:
    if mode not in SHIFT_MODES:
        raise ValueError(f"mode must be one of {list(SHIFT_MODES)}; got {mode!r}")
    return mode  # type: ignore[return-value]


def _check_tensor4(x: object, name: str, layout: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}; got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must be a 4-D tensor of shape {layout}; got {x.dim()}-D shape "
            f"{tuple(x.shape)}"
        )
    return x


def shift_fold(channels: int, fold_div: int) -> int:
    """Number of channels moved per direction: ``channels // fold_div``."""
    return channels // fold_div


def check_fold(channels: int, fold_div: int, where: str = "x") -> int:
    """Return ``fold = channels // fold_div``, or raise when it would be zero.

    Raises:
        ValueError: ``channels < fold_div`` (no channel would move: the shift is a no-op).
    """
    fold = shift_fold(channels, fold_div)
    if fold == 0:
        raise ValueError(
            f"{where} has {channels} channels but fold_div={fold_div}, so fold = "
            f"{channels} // {fold_div} = 0 and nothing would be shifted; use fold_div <= "
            f"{channels} or more channels"
        )
    return fold


def temporal_shift(
    x: torch.Tensor, n_segment: int, fold_div: int = 8, mode: str = "bidirectional"
) -> torch.Tensor:
    """Shift ``fold = C // fold_div`` channels along time.

    Args:
        x: ``(N*T, C, H, W)``, frames of each clip consecutive.
        n_segment: ``T``, frames per clip.
        fold_div: ``fold = C // fold_div`` channels move per direction.
        mode: ``"bidirectional"`` or ``"causal"`` (see the module docstring).

    Returns:
        ``(N*T, C, H, W)``, same dtype and device; ``x`` is not modified.

    Raises:
        TypeError: ``x`` not a tensor; ``n_segment``/``fold_div`` not ints.
        ValueError: ``x`` not 4-D; ``N*T`` not a multiple of ``n_segment``; ``fold == 0``;
            ``fold_div < 2`` in bidirectional mode; unknown ``mode``.
    """
    _check_tensor4(x, "x", "(N*T, C, H, W)")
    _check_int(n_segment, "n_segment", 1)
    _check_mode(mode)
    _check_int(fold_div, "fold_div", 2 if mode == "bidirectional" else 1)
    frames, channels, height, width = x.shape
    if frames % n_segment:
        raise ValueError(
            f"x has {frames} frames (dim 0), which is not a multiple of n_segment={n_segment}; "
            f"pass a whole number of {n_segment}-frame clips stacked as (N*T, C, H, W)"
        )
    fold = check_fold(channels, fold_div)
    clips = x.reshape(frames // n_segment, n_segment, channels, height, width)
    shifter = _shift_causal if mode == "causal" else _shift_bidirectional
    return shifter(clips, fold).reshape(frames, channels, height, width)


def _shift_causal(clips: torch.Tensor, fold: int) -> torch.Tensor:
    # clips (N, T, C, H, W): channels [0, fold) at t <- channels [0, fold) at t-1
    zeros = torch.zeros_like(clips[:, :1, :fold])
    past = torch.cat((zeros, clips[:, :-1, :fold]), dim=1)
    return torch.cat((past, clips[:, :, fold:]), dim=2)


def _shift_bidirectional(clips: torch.Tensor, fold: int) -> torch.Tensor:
    # [0, fold) <- frame t+1; [fold, 2*fold) <- frame t-1; zeros at the clip ends
    zeros = torch.zeros_like(clips[:, :1, :fold])
    future = torch.cat((clips[:, 1:, :fold], zeros), dim=1)
    past = torch.cat((zeros, clips[:, :-1, fold : 2 * fold]), dim=1)
    return torch.cat((future, past, clips[:, :, 2 * fold :]), dim=2)


def shift_step(
    x_t: torch.Tensor, buffer: torch.Tensor, fold_div: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """One online step of the causal shift.

    Args:
        x_t: ``(N, C, H, W)``, frame ``t`` of ``N`` streams.
        buffer: ``(N, fold, H, W)``, the first ``fold = C // fold_div`` channels of frame
            ``t-1`` (zeros before the first frame).
        fold_div: as in :func:`temporal_shift`.

    Returns:
        ``(shifted, new_buffer)``: ``shifted (N, C, H, W)`` is ``x_t`` with channels
        ``[0, fold)`` replaced by ``buffer``; ``new_buffer (N, fold, H, W)`` is a copy of
        ``x_t[:, :fold]``, to pass with frame ``t+1``. Feeding a clip frame by frame from a
        zero buffer equals ``temporal_shift(clip, T, fold_div, "causal")`` frame by frame.

    Raises:
        TypeError: non-tensor inputs or a non-int ``fold_div``.
        ValueError: wrong ranks, ``fold == 0``, or a buffer whose shape does not match ``x_t``.
    """
    _check_tensor4(x_t, "x_t", "(N, C, H, W)")
    _check_tensor4(buffer, "buffer", "(N, fold, H, W)")
    _check_int(fold_div, "fold_div", 1)
    batch, channels, height, width = x_t.shape
    fold = check_fold(channels, fold_div, where="x_t")
    expected = (batch, fold, height, width)
    if tuple(buffer.shape) != expected:
        raise ValueError(
            f"buffer must have shape (N, fold, H, W) = {expected} for x_t of shape "
            f"{tuple(x_t.shape)} and fold_div={fold_div}; got {tuple(buffer.shape)}. "
            "Start from torch.zeros of that shape and pass back the returned new_buffer"
        )
    shifted = torch.cat((buffer, x_t[:, fold:]), dim=1)
    return shifted, x_t[:, :fold].clone()  # a copy: the cache must not alias the caller's x_t
