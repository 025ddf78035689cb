"""One LiDAR sweep as plain arrays: points, intensity and per-point semantic labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SCENE_CLASSES", "LidarScan"]

SCENE_CLASSES: tuple[str, ...] = (
    "ground",
    "building",
    "car",
    "vegetation",
    "pole",
    "pedestrian",
)
"""Semantic class names of generated scenes; a label is an index into this tuple."""


@dataclass(frozen=True, eq=False)
class LidarScan:
    """A single sweep in the sensor frame (x forward, y left, z up; metres).

    Attributes:
        points: float32 ``(N, 3)`` coordinates in metres, sensor at the origin.
        intensity: float32 ``(N,)`` return strength in ``[0, 1]``.
        labels: int64 ``(N,)`` class indices in ``[0, num_classes)``.
        num_classes: number of semantic classes (``len(SCENE_CLASSES)`` for generated scenes).

    Raises:
        TypeError: an array has the wrong dtype.
        ValueError: shapes disagree, or a label or intensity is out of range.
    """

    points: np.ndarray
    intensity: np.ndarray
    labels: np.ndarray
    num_classes: int = len(SCENE_CLASSES)

    def __post_init__(self) -> None:
        _check_array("points", self.points, np.float32, ndim=2)
        if self.points.shape[1] != 3:
            raise ValueError(
                f"LidarScan.points must have shape (N, 3) as (x, y, z); got {self.points.shape}"
            )
        n = self.points.shape[0]
        _check_array("intensity", self.intensity, np.float32, ndim=1, length=n)
        _check_array("labels", self.labels, np.int64, ndim=1, length=n)
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise TypeError(
                f"LidarScan.num_classes must be an int; got {type(self.num_classes).__name__}"
            )
        if self.num_classes < 1:
            raise ValueError(f"LidarScan.num_classes must be >= 1; got {self.num_classes}")
        if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ValueError(
                f"LidarScan.labels must lie in [0, {self.num_classes}); "
                f"got values in [{self.labels.min()}, {self.labels.max()}]"
            )
        if n and not (self.intensity.min() >= 0.0 and self.intensity.max() <= 1.0):
            raise ValueError(
                "LidarScan.intensity must lie in [0, 1]; "
                f"got values in [{self.intensity.min()}, {self.intensity.max()}]"
            )

    @property
    def num_points(self) -> int:
        """Number of returns ``N``."""
        return int(self.points.shape[0])

    def __len__(self) -> int:
        return self.num_points


def _check_array(
    name: str, array: object, dtype: type, *, ndim: int, length: int | None = None
) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"LidarScan.{name} must be a numpy array of dtype {np.dtype(dtype).name}; "
            f"got {type(array).__name__}"
        )
    if array.dtype != dtype:
        raise TypeError(
            f"LidarScan.{name} must have dtype {np.dtype(dtype).name}; got {array.dtype} "
            f"(convert with .astype(np.{np.dtype(dtype).name}))"
        )
    if array.ndim != ndim or (length is not None and array.shape[0] != length):
        expected = f"({length},)" if length is not None else f"{ndim} dimensions"
        raise ValueError(f"LidarScan.{name} must have shape {expected}; got {array.shape}")
