"""Slow, obviously correct geometry for checking the ray caster: signed distances.

Each primitive gets the textbook signed distance function (negative inside, zero on the
surface). A ray hit is right when its point has distance ~0 to a primitive of the hit label,
and nothing along the ray before it is inside any primitive.
"""

from __future__ import annotations

import numpy as np

from edgeinfer.datasets import SceneLayout

__all__ = ["labelled_surface_distance", "scene_sdf"]


def _box_sdf(layout: SceneLayout, points: np.ndarray) -> np.ndarray:
    boxes = layout.boxes
    cos, sin = np.cos(boxes.yaw), np.sin(boxes.yaw)
    rel = points[:, None, :] - boxes.center[None]  # (M, B, 3)
    local = np.stack(
        [
            cos * rel[..., 0] + sin * rel[..., 1],
            -sin * rel[..., 0] + cos * rel[..., 1],
            rel[..., 2],
        ],
        axis=-1,
    )
    excess = np.abs(local) - boxes.half_size  # (M, B, 3)
    outside = np.linalg.norm(np.maximum(excess, 0.0), axis=-1)
    return outside + np.minimum(excess.max(axis=-1), 0.0)  # (M, B)


def _cylinder_sdf(layout: SceneLayout, points: np.ndarray) -> np.ndarray:
    cyl = layout.cylinders
    radial = np.linalg.norm(points[:, None, :2] - cyl.center[None], axis=-1) - cyl.radius
    vertical = np.maximum(
        cyl.z_range[:, 0] - points[:, None, 2], points[:, None, 2] - cyl.z_range[:, 1]
    )
    excess = np.stack([radial, vertical], axis=-1)  # (M, C, 2)
    outside = np.linalg.norm(np.maximum(excess, 0.0), axis=-1)
    return outside + np.minimum(excess.max(axis=-1), 0.0)


def _sphere_sdf(layout: SceneLayout, points: np.ndarray) -> np.ndarray:
    spheres = layout.spheres
    return np.linalg.norm(points[:, None, :] - spheres.center[None], axis=-1) - spheres.radius


def _ground_sdf(layout: SceneLayout, points: np.ndarray) -> np.ndarray:
    ground = layout.ground
    normal = np.array([-ground.slope[0], -ground.slope[1], 1.0])
    height_above = points[:, 2] - ground.z_at(points[:, 0], points[:, 1])
    return (height_above / np.linalg.norm(normal))[:, None]  # (M, 1)


def _all_sdf(layout: SceneLayout, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance of every point to every primitive ``(M, K)`` and the labels ``(K,)``."""
    points = np.asarray(points, dtype=np.float64)
    columns, labels = [], []
    if layout.ground is not None:
        columns.append(_ground_sdf(layout, points))
        labels.append(np.array([layout.ground.label]))
    for prims, sdf in (
        (layout.boxes, _box_sdf),
        (layout.cylinders, _cylinder_sdf),
        (layout.spheres, _sphere_sdf),
    ):
        if prims is not None and len(prims):
            columns.append(sdf(layout, points))
            labels.append(prims.labels)
    return np.concatenate(columns, axis=1), np.concatenate(labels)


def scene_sdf(layout: SceneLayout, points: np.ndarray) -> np.ndarray:
    """Signed distance ``(M,)`` of each point to the union of all primitives."""
    return _all_sdf(layout, points)[0].min(axis=1)


def labelled_surface_distance(
    layout: SceneLayout, points: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Distance ``(M,)`` of each point to the nearest surface of a primitive with its label."""
    sdf, prim_labels = _all_sdf(layout, points)
    distance = np.where(prim_labels[None, :] == labels[:, None], np.abs(sdf), np.inf)
    return distance.min(axis=1)
