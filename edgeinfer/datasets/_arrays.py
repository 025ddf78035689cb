"""Input checks shared by the point-cloud writers: shapes, dtypes and value ranges."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["as_path", "check_colors", "check_labels", "check_points", "check_values"]


def as_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a ``Path``; raises TypeError for anything else."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    return Path(path)


def check_points(points: object) -> np.ndarray:
    """``points`` as float32 ``(N, 3)``, checked to be real-valued and finite.

    Raises:
        TypeError: not a real numeric array.
        ValueError: not of shape (N, 3), or non-finite values.
    """
    array = np.asarray(points)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"points must be a real numeric array of shape (N, 3); got {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3) as (x, y, z); got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("points must be finite; drop or fix the NaN/inf rows before writing")
    return array.astype(np.float32, copy=False)


def check_values(name: str, values: object, count: int) -> np.ndarray:
    """float32 ``(count,)`` per-point scalars such as intensity."""
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(
            f"{name} must be a real numeric array of shape ({count},); got {array.dtype}"
        )
    if array.shape != (count,):
        raise ValueError(
            f"{name} must have shape ({count},), one value per point; got {array.shape}"
        )
    return array.astype(np.float32, copy=False)


def check_labels(labels: object, count: int) -> np.ndarray:
    """int32 ``(count,)`` labels; raises TypeError for non-integers, ValueError out of int32."""
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"labels must be an integer array of shape ({count},); got {array.dtype} "
            "(convert with .astype(np.int64))"
        )
    if array.shape != (count,):
        raise ValueError(f"labels must have shape ({count},), one per point; got {array.shape}")
    info = np.iinfo(np.int32)
    if count and (array.min() < info.min or array.max() > info.max):
        raise ValueError("labels must fit in int32 to be stored in a file")
    return array.astype(np.int32, copy=False)


def check_colors(colors: object, count: int) -> np.ndarray:
    """uint8 ``(count, 3)`` RGB colours; integers in [0, 255] are accepted and converted.

    Raises:
        TypeError: floating-point colours (scale them to 0..255 integers first).
        ValueError: wrong shape or values outside [0, 255].
    """
    array = np.asarray(colors)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"colors must be uint8 (or integers in [0, 255]) of shape ({count}, 3); got "
            f"{array.dtype} (for floats in [0, 1] use (colors * 255).round().astype(np.uint8))"
        )
    if array.shape != (count, 3):
        raise ValueError(
            f"colors must have shape ({count}, 3) as (red, green, blue); got {array.shape}"
        )
    if count and (array.min() < 0 or array.max() > 255):
        raise ValueError("colors must lie in [0, 255]")
    return array.astype(np.uint8, copy=False)
