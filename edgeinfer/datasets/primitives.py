"""Geometric primitives a synthetic scene is built from, as arrays (one row per primitive).

All coordinates are in the sensor frame (x forward, y left, z up; metres). Every primitive
carries a semantic label (index into ``SCENE_CLASSES``) and a material reflectivity in
``[0, 1]`` that the sensor model turns into intensity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Boxes", "Cylinders", "Ground", "SceneLayout", "Spheres"]


@dataclass(frozen=True)
class Ground:
    """The plane ``z = height + slope[0] * x + slope[1] * y``.

    Raises:
        ValueError: reflectivity outside ``[0, 1]`` or a slope steeper than 1 (45 degrees).
    """

    height: float
    slope: tuple[float, float] = (0.0, 0.0)
    label: int = 0
    reflectivity: float = 0.25

    def __post_init__(self) -> None:
        if len(self.slope) != 2 or max(abs(s) for s in self.slope) > 1.0:
            raise ValueError(
                f"Ground.slope must be two gradients (dz/dx, dz/dy) of magnitude <= 1; "
                f"got {self.slope}"
            )
        if not 0.0 <= self.reflectivity <= 1.0:
            raise ValueError(f"Ground.reflectivity must lie in [0, 1]; got {self.reflectivity}")

    def z_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ground height under ``(x, y)``; shapes broadcast."""
        return self.height + self.slope[0] * np.asarray(x) + self.slope[1] * np.asarray(y)


@dataclass(frozen=True, eq=False)
class Boxes:
    """Boxes rotated about the vertical axis.

    Attributes:
        center: float64 ``(B, 3)`` box centres.
        half_size: float64 ``(B, 3)`` half extents along the box's own x, y, z axes (> 0).
        yaw: float64 ``(B,)`` rotation about z in radians (box x axis = world direction yaw).
        labels: int64 ``(B,)`` semantic labels.
        reflectivity: float64 ``(B,)`` material reflectivity in ``[0, 1]``.
    """

    center: np.ndarray
    half_size: np.ndarray
    yaw: np.ndarray
    labels: np.ndarray
    reflectivity: np.ndarray

    def __post_init__(self) -> None:
        _check_rows(
            "Boxes",
            {"center": (self.center, 3), "half_size": (self.half_size, 3), "yaw": (self.yaw, 0)},
            self.labels,
            self.reflectivity,
        )
        if np.any(self.half_size <= 0):
            raise ValueError("Boxes.half_size must be > 0 along every axis")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class Cylinders:
    """Upright cylinders with a flat top.

    Attributes:
        center: float64 ``(C, 2)`` axis position ``(x, y)``.
        radius: float64 ``(C,)`` radii (> 0).
        z_range: float64 ``(C, 2)`` bottom and top heights, bottom < top.
        labels: int64 ``(C,)`` semantic labels.
        reflectivity: float64 ``(C,)`` material reflectivity in ``[0, 1]``.
    """

    center: np.ndarray
    radius: np.ndarray
    z_range: np.ndarray
    labels: np.ndarray
    reflectivity: np.ndarray

    def __post_init__(self) -> None:
        _check_rows(
            "Cylinders",
            {"center": (self.center, 2), "radius": (self.radius, 0), "z_range": (self.z_range, 2)},
            self.labels,
            self.reflectivity,
        )
        if np.any(self.radius <= 0) or np.any(self.z_range[:, 0] >= self.z_range[:, 1]):
            raise ValueError("Cylinders need radius > 0 and z_range[:, 0] < z_range[:, 1]")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class Spheres:
    """Spheres.

    Attributes:
        center: float64 ``(S, 3)`` centres.
        radius: float64 ``(S,)`` radii (> 0).
        labels: int64 ``(S,)`` semantic labels.
        reflectivity: float64 ``(S,)`` material reflectivity in ``[0, 1]``.
    """

    center: np.ndarray
    radius: np.ndarray
    labels: np.ndarray
    reflectivity: np.ndarray

    def __post_init__(self) -> None:
        _check_rows(
            "Spheres",
            {"center": (self.center, 3), "radius": (self.radius, 0)},
            self.labels,
            self.reflectivity,
        )
        if np.any(self.radius <= 0):
            raise ValueError("Spheres.radius must be > 0")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class SceneLayout:
    """Everything a sensor can see: a ground plane and optional boxes, cylinders, spheres."""

    ground: Ground | None
    boxes: Boxes | None = None
    cylinders: Cylinders | None = None
    spheres: Spheres | None = None

    def __post_init__(self) -> None:
        for name, kind in (
            ("ground", Ground),
            ("boxes", Boxes),
            ("cylinders", Cylinders),
            ("spheres", Spheres),
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise TypeError(
                    f"SceneLayout.{name} must be a {kind.__name__} or None; "
                    f"got {type(value).__name__}"
                )


def _check_rows(
    owner: str,
    arrays: dict[str, tuple[np.ndarray, int]],
    labels: np.ndarray,
    reflectivity: np.ndarray,
) -> None:
    """Check every array has one row per primitive (width 0 means a 1-D array)."""
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype != np.int64:
        raise TypeError(f"{owner}.labels must be an int64 array of shape (K,)")
    count = labels.shape[0]
    arrays = {**arrays, "reflectivity": (reflectivity, 0)}
    for name, (array, width) in arrays.items():
        expected = (count,) if width == 0 else (count, width)
        if not isinstance(array, np.ndarray) or array.dtype != np.float64:
            raise TypeError(f"{owner}.{name} must be a float64 numpy array of shape {expected}")
        if array.shape != expected:
            raise ValueError(
                f"{owner}.{name} must have shape {expected} (one row per label); got {array.shape}"
            )
    if np.any(reflectivity < 0) or np.any(reflectivity > 1):
        raise ValueError(f"{owner}.reflectivity must lie in [0, 1]")
