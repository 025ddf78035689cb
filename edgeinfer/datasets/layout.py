"""Random but reproducible street layouts: buildings, parked and driving cars, trees, poles and
pedestrians along a straight street on gently sloped ground.

Everything is placed in the sensor frame (sensor at the origin, street along x, ground about
``sensor_height`` below). The same seed always gives the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .primitives import Boxes, Cylinders, Ground, SceneLayout, Spheres
from .scan import SCENE_CLASSES

__all__ = ["build_layout"]

GROUND, BUILDING, CAR, VEGETATION, POLE, PEDESTRIAN = range(len(SCENE_CLASSES))


@dataclass(frozen=True)
class _Street:
    """Cross-section of the street: road centre line and widths (metres)."""

    ground: Ground
    centre_y: float
    road_half_width: float
    sidewalk_width: float
    extent: float

    def side_y(self, side: int, offset: float) -> float:
        """y of a line ``offset`` metres outward from the road edge on ``side`` (+1 / -1)."""
        return self.centre_y + side * (self.road_half_width + offset)


@dataclass
class _Parts:
    """Primitive rows collected while sampling, turned into arrays once at the end."""

    boxes: list[tuple] = field(default_factory=list)
    cylinders: list[tuple] = field(default_factory=list)
    spheres: list[tuple] = field(default_factory=list)

    def layout(self, ground: Ground) -> SceneLayout:
        return SceneLayout(
            ground=ground,
            boxes=_boxes(self.boxes),
            cylinders=_cylinders(self.cylinders),
            spheres=_spheres(self.spheres),
        )


def build_layout(seed: int = 0, *, sensor_height: float = 1.7, extent: float = 80.0) -> SceneLayout:
    """Sample a street scene around a sensor standing on the road.

    Args:
        seed: non-negative integer; the same seed gives the same layout.
        sensor_height: height of the sensor above the ground under it (metres, > 0).
        extent: the street spans ``x`` in ``[-extent, extent]`` metres (> 10).

    Raises:
        TypeError: seed is not an int.
        ValueError: negative seed, non-positive height, or an extent of 10 m or less.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be a non-negative int; got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed}")
    if not sensor_height > 0 or not extent > 10:
        raise ValueError(
            f"need sensor_height > 0 and extent > 10 metres; got {sensor_height} and {extent}"
        )
    rng = np.random.default_rng(seed)
    ground = Ground(
        height=-float(sensor_height),
        slope=(float(rng.uniform(-0.02, 0.02)), float(rng.uniform(-0.01, 0.01))),
        label=GROUND,
        reflectivity=float(rng.uniform(0.15, 0.25)),
    )
    street = _Street(
        ground=ground,
        centre_y=float(rng.uniform(-1.5, 1.5)),
        road_half_width=float(rng.uniform(4.5, 6.5)),
        sidewalk_width=float(rng.uniform(3.0, 4.5)),
        extent=float(extent),
    )
    parts = _Parts()
    for side in (1, -1):
        _add_buildings(parts, rng, street, side)
        _add_parked_cars(parts, rng, street, side)
        _add_trees(parts, rng, street, side)
        _add_poles(parts, rng, street, side)
    _add_driving_cars(parts, rng, street)
    _add_pedestrians(parts, rng, street)
    return parts.layout(ground)


def _stations(rng: np.random.Generator, start: float, stop: float, gap: tuple[float, float]):
    """Positions from ``start`` to ``stop`` separated by uniform random gaps."""
    x = start + rng.uniform(0.0, gap[1])
    while x < stop:
        yield x
        x += rng.uniform(*gap)


def _add_buildings(parts: _Parts, rng: np.random.Generator, street: _Street, side: int) -> None:
    """A row of blocks set back from the sidewalk, with small gaps and the odd alley."""
    x = -street.extent
    front = street.side_y(side, street.sidewalk_width + rng.uniform(0.0, 1.5))
    while x < street.extent:
        length, depth = rng.uniform(8.0, 25.0), rng.uniform(8.0, 16.0)
        height = rng.uniform(5.0, 25.0)
        cx, cy = x + length / 2, front + side * (depth / 2 + rng.uniform(0.0, 1.0))
        floor = float(street.ground.z_at(cx, cy))
        low, high = floor - 1.0, floor + height
        yaw = np.deg2rad(rng.normal(0.0, 1.5))
        parts.boxes.append(
            ((cx, cy, (low + high) / 2), (length / 2, depth / 2, (high - low) / 2), yaw,
             BUILDING, rng.uniform(0.35, 0.6))
        )  # fmt: skip
        x += length + (rng.uniform(12.0, 18.0) if rng.random() < 0.15 else rng.uniform(0.5, 6.0))


def _add_car(parts: _Parts, rng: np.random.Generator, street: _Street, cx: float, cy: float):
    """A car: a body box and a narrower, shorter cabin box on top (same paint)."""
    length, width = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.95)
    yaw = np.deg2rad(rng.normal(0.0, 2.0)) + (np.pi if rng.random() < 0.5 else 0.0)
    paint = rng.uniform(0.3, 0.9)
    floor = float(street.ground.z_at(cx, cy))
    body_top, cabin_top = floor + rng.uniform(0.9, 1.1), floor + rng.uniform(1.4, 1.6)
    body_half = (length / 2, width / 2, (body_top - floor + 0.1) / 2)
    parts.boxes.append(((cx, cy, (floor - 0.1 + body_top) / 2), body_half, yaw, CAR, paint))
    shift = -0.1 * length * np.array([np.cos(yaw), np.sin(yaw)])
    parts.boxes.append(
        ((cx + shift[0], cy + shift[1], (body_top + cabin_top) / 2),
         (0.28 * length, 0.44 * width, (cabin_top - body_top) / 2), yaw, CAR, paint)
    )  # fmt: skip


def _add_parked_cars(parts: _Parts, rng: np.random.Generator, street: _Street, side: int) -> None:
    """Cars along the kerb, leaving some spaces empty."""
    for x in _stations(rng, -0.6 * street.extent, 0.6 * street.extent, (5.5, 12.0)):
        if rng.random() < 0.7:
            _add_car(parts, rng, street, x, street.side_y(side, -1.1))


def _add_driving_cars(parts: _Parts, rng: np.random.Generator, street: _Street) -> None:
    """One to three cars in the lanes, clear of the sensor."""
    for _ in range(int(rng.integers(1, 4))):
        x = rng.choice([-1.0, 1.0]) * rng.uniform(10.0, 40.0)
        lane = rng.choice([-1, 1]) * street.road_half_width / 2
        _add_car(parts, rng, street, x, street.centre_y + lane)


def _add_trees(parts: _Parts, rng: np.random.Generator, street: _Street, side: int) -> None:
    """Street trees: a trunk cylinder that reaches into a spherical crown."""
    y = street.side_y(side, 1.0)
    for x in _stations(rng, -0.75 * street.extent, 0.75 * street.extent, (7.0, 16.0)):
        if rng.random() < 0.2:
            continue
        floor = float(street.ground.z_at(x, y))
        trunk, crown = rng.uniform(1.8, 3.0), rng.uniform(1.2, 2.5)
        radius = rng.uniform(0.12, 0.25)
        parts.cylinders.append(
            ((x, y), radius, (floor - 0.5, floor + trunk + 0.5 * crown), VEGETATION,
             rng.uniform(0.3, 0.45))
        )  # fmt: skip
        crown_z = floor + trunk + 0.8 * crown
        parts.spheres.append(((x, y, crown_z), crown, VEGETATION, rng.uniform(0.3, 0.5)))


def _add_poles(parts: _Parts, rng: np.random.Generator, street: _Street, side: int) -> None:
    """Thin tall metal poles close to the kerb."""
    y = street.side_y(side, 0.4)
    for x in _stations(rng, -street.extent, street.extent, (18.0, 30.0)):
        floor = float(street.ground.z_at(x, y))
        parts.cylinders.append(
            ((x, y), rng.uniform(0.07, 0.13), (floor - 0.5, floor + rng.uniform(5.0, 9.0)), POLE,
             rng.uniform(0.6, 0.8))
        )  # fmt: skip


def _add_pedestrians(parts: _Parts, rng: np.random.Generator, street: _Street) -> None:
    """Four to nine people on the sidewalks; the first two within 20 m so they are seen."""
    for k in range(int(rng.integers(4, 10))):
        reach = 20.0 if k < 2 else 35.0
        side = 1 if k % 2 == 0 else -1
        x = rng.uniform(-reach, reach)
        y = street.side_y(side, rng.uniform(1.6, street.sidewalk_width - 0.4))
        floor = float(street.ground.z_at(x, y))
        parts.cylinders.append(
            ((x, y), rng.uniform(0.2, 0.3), (floor - 0.2, floor + rng.uniform(1.5, 1.9)),
             PEDESTRIAN, rng.uniform(0.2, 0.4))
        )  # fmt: skip


def _column(rows: list[tuple], index: int, width: int = 0) -> np.ndarray:
    values = np.array([row[index] for row in rows], dtype=np.float64)
    return values.reshape(-1, width) if width else values.reshape(-1)


def _labels(rows: list[tuple], index: int) -> np.ndarray:
    return np.array([row[index] for row in rows], dtype=np.int64).reshape(-1)


def _boxes(rows: list[tuple]) -> Boxes:
    return Boxes(_column(rows, 0, 3), _column(rows, 1, 3), _column(rows, 2), _labels(rows, 3),
                 _column(rows, 4))  # fmt: skip


def _cylinders(rows: list[tuple]) -> Cylinders:
    return Cylinders(_column(rows, 0, 2), _column(rows, 1), _column(rows, 2, 2),
                     _labels(rows, 3), _column(rows, 4))  # fmt: skip


def _spheres(rows: list[tuple]) -> Spheres:
    return Spheres(_column(rows, 0, 3), _column(rows, 1), _labels(rows, 2), _column(rows, 3))
