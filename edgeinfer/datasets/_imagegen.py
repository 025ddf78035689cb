"""Helpers shared by the synthetic video generators: argument checks and smooth noise."""

from __future__ import annotations

import numpy as np

__all__ = ["check_count", "check_seed", "smooth_noise", "to_uint8"]


def check_count(value: object, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``.

    Raises:
        TypeError: not an int (bools are refused).
        ValueError: below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum}; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return int(value)


def check_seed(seed: object) -> int:
    """``seed`` as a non-negative int (what ``np.random.default_rng`` takes reproducibly).

    Raises:
        TypeError: not an int.
        ValueError: negative.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be a non-negative int; got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed}")
    return int(seed)


def _interp_matrix(out_size: int, in_size: int) -> np.ndarray:
    """``(out_size, in_size)`` linear-interpolation weights from a coarse grid (>= 2) to pixels."""
    position = (np.arange(out_size, dtype=np.float32) + 0.5) * (in_size - 1) / out_size
    low = np.minimum(position.astype(np.int64), in_size - 2)
    frac = position - low
    weights = np.zeros((out_size, in_size), dtype=np.float32)
    rows = np.arange(out_size)
    weights[rows, low] = 1.0 - frac
    weights[rows, low + 1] = frac
    return weights


def smooth_noise(
    rng: np.random.Generator, height: int, width: int, cell: float, channels: int = 3
) -> np.ndarray:
    """Zero-mean, unit-scale noise smooth over about ``cell`` pixels: float32 ``(H, W, C)``.

    Random values on a coarse grid, bilinearly interpolated to the pixel grid (two small
    matrix products per channel).
    """
    coarse_h = max(2, round(height / cell) + 1)
    coarse_w = max(2, round(width / cell) + 1)
    coarse = rng.standard_normal((channels, coarse_h, coarse_w), dtype=np.float32)
    rows = _interp_matrix(height, coarse_h)  # (H, h)
    cols = _interp_matrix(width, coarse_w)  # (W, w)
    fine = rows @ coarse @ cols.T  # (C, H, W)
    return np.ascontiguousarray(fine.transpose(1, 2, 0))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip a float image to uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
