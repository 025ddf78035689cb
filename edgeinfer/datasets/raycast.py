"""Vectorised ray casting against a ``SceneLayout``: the nearest hit of every ray.

Each primitive kind is intersected analytically against all rays at once (arrays of shape
``(R, K)`` for R rays and K primitives); the nearest positive distance wins per ray. Rays are
processed in chunks so temporaries stay a few megabytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import Boxes, Cylinders, Ground, SceneLayout, Spheres

__all__ = ["RayHits", "cast_rays"]

_EPS = 1e-6  # hits closer than this (metres) are ignored: the ray starts on the surface
_CHUNK = 8192  # rays per chunk; (R, K, 3) temporaries stay small


@dataclass(frozen=True, eq=False)
class RayHits:
    """Nearest hit per ray.

    Attributes:
        distance: float64 ``(R,)`` distance along the unit ray; ``inf`` where nothing is hit.
        normal: float64 ``(R, 3)`` unit surface normal at the hit (zeros where no hit).
        labels: int64 ``(R,)`` semantic label of the surface hit; ``-1`` where no hit.
        reflectivity: float64 ``(R,)`` material reflectivity of the surface (0 where no hit).
    """

    distance: np.ndarray
    normal: np.ndarray
    labels: np.ndarray
    reflectivity: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """bool ``(R,)``: whether the ray hit anything."""
        return np.isfinite(self.distance)


def cast_rays(layout: SceneLayout, origin: np.ndarray, directions: np.ndarray) -> RayHits:
    """Intersect rays from one origin with every primitive of ``layout``; keep the nearest.

    Args:
        layout: the scene.
        origin: ``(3,)`` common start point of all rays (the sensor).
        directions: ``(R, 3)`` ray directions; normalised here.

    Raises:
        ValueError: wrong shapes, or a zero-length direction.
    """
    origin = np.asarray(origin, dtype=np.float64)
    directions = np.asarray(directions, dtype=np.float64)
    if origin.shape != (3,) or directions.ndim != 2 or directions.shape[1] != 3:
        raise ValueError(
            "cast_rays expects origin of shape (3,) and directions of shape (R, 3); "
            f"got {origin.shape} and {directions.shape}"
        )
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("cast_rays: every direction must have non-zero length")
    directions = directions / norms
    parts = [
        _cast_chunk(layout, origin, directions[start : start + _CHUNK])
        for start in range(0, directions.shape[0], _CHUNK)
    ]
    if not parts:
        parts = [_cast_chunk(layout, origin, directions)]
    return RayHits(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))


def _cast_chunk(
    layout: SceneLayout, origin: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    count = dirs.shape[0]
    best = np.full(count, np.inf)
    normal = np.zeros((count, 3))
    labels = np.full(count, -1, dtype=np.int64)
    reflectivity = np.zeros(count)
    candidates = []
    if layout.ground is not None:
        candidates.append(_hit_ground(layout.ground, origin, dirs))
    for prims, hit_fn in (
        (layout.boxes, _hit_boxes),
        (layout.cylinders, _hit_cylinders),
        (layout.spheres, _hit_spheres),
    ):
        if prims is not None and len(prims):
            dist, index, surface = hit_fn(prims, origin, dirs)
            candidates.append((dist, surface, prims.labels[index], prims.reflectivity[index]))
    for dist, surface, label, refl in candidates:
        closer = dist < best
        best = np.where(closer, dist, best)
        normal[closer] = surface[closer]
        labels = np.where(closer, label, labels)
        reflectivity = np.where(closer, refl, reflectivity)
    return best, normal, labels, reflectivity


def _hit_ground(
    ground: Ground, origin: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    plane_normal = np.array([-ground.slope[0], -ground.slope[1], 1.0])
    plane_normal /= np.linalg.norm(plane_normal)
    offset = ground.height / np.sqrt(1.0 + ground.slope[0] ** 2 + ground.slope[1] ** 2)
    facing = dirs @ plane_normal  # (R,)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = (offset - origin @ plane_normal) / facing
    dist = np.where(np.isfinite(dist) & (dist > _EPS), dist, np.inf)
    count = dirs.shape[0]
    return (
        dist,
        np.broadcast_to(plane_normal, (count, 3)),
        np.full(count, ground.label, dtype=np.int64),
        np.full(count, ground.reflectivity),
    )


def _nearest(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dist`` (R, K) -> nearest distance (R,), its primitive index (R,), row index (R,)."""
    index = dist.argmin(axis=1)
    rows = np.arange(dist.shape[0])
    return dist[rows, index], index, rows


def _hit_boxes(
    boxes: Boxes, origin: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slab test in each box's own frame. Returns distance (R,), box index (R,), normal (R, 3)."""
    cos, sin = np.cos(boxes.yaw), np.sin(boxes.yaw)  # (B,)
    rel = origin - boxes.center  # (B, 3)
    o_local = (cos * rel[:, 0] + sin * rel[:, 1], -sin * rel[:, 0] + cos * rel[:, 1], rel[:, 2])
    dx, dy = dirs[:, 0:1], dirs[:, 1:2]  # (R, 1)
    d_local = (cos * dx + sin * dy, -sin * dx + cos * dy, dirs[:, 2:3])  # (R, B), (R, B), (R, 1)
    near, far = [], []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for axis in range(3):
            inv = 1.0 / d_local[axis]
            t_lo = (-boxes.half_size[:, axis] - o_local[axis]) * inv  # (R, B)
            t_hi = (boxes.half_size[:, axis] - o_local[axis]) * inv
            near.append(np.minimum(t_lo, t_hi))
            far.append(np.maximum(t_lo, t_hi))
    t_enter = np.maximum(np.maximum(near[0], near[1]), near[2])  # (R, B)
    t_exit = np.minimum(np.minimum(far[0], far[1]), far[2])
    dist = np.where((t_enter <= t_exit) & (t_enter > _EPS), t_enter, np.inf)
    best, index, rows = _nearest(dist)
    entry_axis = np.stack([n[rows, index] for n in near], axis=-1).argmax(axis=-1)  # (R,)
    d_best = np.stack([np.broadcast_to(d, near[0].shape)[rows, index] for d in d_local], -1)
    local = np.zeros((dirs.shape[0], 3))
    local[rows, entry_axis] = -np.sign(d_best[rows, entry_axis])
    c, s = cos[index], sin[index]
    normal = np.stack(
        [c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]],
        axis=-1,
    )
    return best, index, normal


def _hit_cylinders(
    cyl: Cylinders, origin: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Side (quadratic in x, y) and flat top. Returns distance, index, normal as for boxes."""
    oc = origin[:2] - cyl.center  # (C, 2)
    dxy = dirs[:, :2]  # (R, 2)
    a = np.einsum("ij,ij->i", dxy, dxy)[:, None]  # (R, 1)
    half_b = dxy @ oc.T  # (R, C)
    c = np.einsum("ij,ij->i", oc, oc) - cyl.radius**2  # (C,)
    disc = half_b * half_b - a * c
    bottom, top = cyl.z_range[:, 0], cyl.z_range[:, 1]
    dz = dirs[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-half_b - np.sqrt(disc)) / a
        z_side = origin[2] + t_side * dz
        t_cap = (top - origin[2]) / dz  # (R, C)
    side_ok = (disc >= 0) & (t_side > _EPS) & (z_side >= bottom) & (z_side <= top)
    cap_x = origin[0] + t_cap * dirs[:, 0:1] - cyl.center[:, 0]
    cap_y = origin[1] + t_cap * dirs[:, 1:2] - cyl.center[:, 1]
    cap_ok = (t_cap > _EPS) & (cap_x * cap_x + cap_y * cap_y <= cyl.radius**2)
    t_side = np.where(side_ok, t_side, np.inf)
    dist = np.minimum(t_side, np.where(cap_ok, t_cap, np.inf))
    best, index, rows = _nearest(dist)
    on_side = np.isfinite(best) & (t_side[rows, index] <= best)
    with np.errstate(invalid="ignore"):
        point_xy = origin[:2] + best[:, None] * dxy
        radial = (point_xy - cyl.center[index]) / cyl.radius[index, None]
    normal = np.zeros((dirs.shape[0], 3))
    normal[on_side, :2] = radial[on_side]
    normal[~on_side, 2] = 1.0
    return best, index, normal


def _hit_spheres(
    spheres: Spheres, origin: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest root of the sphere quadratic. Returns distance, index, normal as for boxes."""
    oc = origin - spheres.center  # (S, 3)
    half_b = dirs @ oc.T  # (R, S)
    c = np.einsum("ij,ij->i", oc, oc) - spheres.radius**2  # (S,)
    disc = half_b * half_b - c
    with np.errstate(invalid="ignore"):
        t = -half_b - np.sqrt(disc)
    dist = np.where((disc >= 0) & (t > _EPS), t, np.inf)
    best, index, _ = _nearest(dist)
    with np.errstate(invalid="ignore"):
        point = origin + best[:, None] * dirs
        normal = (point - spheres.center[index]) / spheres.radius[index, None]
    return best, index, np.where(np.isfinite(best)[:, None], normal, 0.0)
