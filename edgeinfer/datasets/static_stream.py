"""A static camera watching a still scene that something occasionally walks into.

``generate_static_stream`` renders a fixed, textured background with small per-frame sensor
noise; objects (rectangles with a coarse two-tone block texture, contrasting with the
background) arrive at random frames, slide in from an edge to a stopping point, wait there, and
slide out through an edge. Most frames differ from their predecessor by sensor noise only, which
is what a change gate should skip.

``events[t]`` is exact ground truth: True when the noise-free frame ``t`` differs from the
noise-free frame ``t - 1`` (``events[0]`` is False: frame 0 has no predecessor). An object is
drawn only while at least half of it, along its direction of travel, is inside the frame: it
pops in half-visible and pops out when half gone, so every event changes a patch at least half
an object wide (objects are >= 12 % of the shorter side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._imagegen import check_count, check_seed, smooth_noise

__all__ = ["generate_static_stream"]


@dataclass(frozen=True)
class _Visit:
    """One object's stay: the frame it pops in, its per-frame top-left corners and its pixels."""

    start: int
    corners: np.ndarray  # int64 (K, 2) as (y, x), one row per frame it is drawn
    pixels: np.ndarray  # uint8 (h, w, 3)


def _check_size(size: object) -> tuple[int, int]:
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, int | np.integer) for s in size)
    ):
        raise TypeError(f"size must be a (height, width) pair of ints; got {size!r}")
    height, width = int(size[0]), int(size[1])
    if height < 32 or width < 32:
        raise ValueError(f"size must be at least (32, 32) as (height, width); got {size!r}")
    return height, width


def _check_rate(event_rate: object) -> float:
    if isinstance(event_rate, bool) or not isinstance(event_rate, int | float):
        raise TypeError(f"event_rate must be a float in [0, 1]; got {event_rate!r}")
    if not 0.0 <= event_rate <= 1.0:
        raise ValueError(
            f"event_rate must be in [0, 1] (expected object arrivals per frame); got {event_rate}"
        )
    return float(event_rate)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """float32 ``(H, W, 3)`` scene: mid-grey base with a tint, smooth blotches, fine grain."""
    level = rng.uniform(100.0, 150.0)
    base = level + rng.uniform(-15.0, 15.0, size=3)
    blotches = smooth_noise(rng, height, width, cell=min(height, width) / 6) * 10.0
    grain = smooth_noise(rng, height, width, cell=3.0) * 5.0
    return (base + blotches + grain).astype(np.float32)


def _object_pixels(rng: np.random.Generator, height: int, width: int, level: float) -> np.ndarray:
    """uint8 ``(h, w, 3)`` two-tone block texture far (>= 60 grey levels) from ``level``."""
    dark = rng.uniform(0.0, level - 70.0)
    bright = rng.uniform(level + 70.0, 255.0)
    tint = rng.uniform(-20.0, 20.0, size=(2, 3))
    tones = np.clip(np.array([[dark], [bright]]) + tint, 0, 255).astype(np.uint8)  # (2, 3)
    cell = int(rng.integers(4, 9))
    blocks = rng.integers(0, 2, size=(-(-height // cell), -(-width // cell)))
    pattern = np.repeat(np.repeat(blocks, cell, axis=0), cell, axis=1)[:height, :width]
    return tones[pattern]


def _leg(start: np.ndarray, end: np.ndarray, speed: float) -> np.ndarray:
    """Integer corners from ``start`` to ``end`` (both included) at about ``speed`` px/frame."""
    steps = max(1, int(np.ceil(np.abs(end - start).max() / speed)))
    return np.rint(start + np.outer(np.linspace(0.0, 1.0, steps + 1), end - start)).astype(np.int64)


def _edge_corner(side: int, stop: np.ndarray, box: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Corner half outside ``side`` (0 left, 1 right, 2 top, 3 bottom), in line with ``stop``."""
    axis = 1 if side < 2 else 0
    corner = stop.astype(np.float64).copy()
    corner[axis] = -box[axis] // 2 if side % 2 == 0 else frame[axis] - (box[axis] + 1) // 2
    return corner


def _plan_visit(rng: np.random.Generator, start: int, frame: np.ndarray, level: float) -> _Visit:
    """Sample one object's size, texture, path in, wait and path out."""
    short = frame.min()
    box = rng.integers(int(0.12 * short), int(0.3 * short) + 1, size=2)  # (h, w)
    stop = np.array([rng.integers(0, frame[axis] - box[axis] + 1) for axis in (0, 1)])
    speed = rng.uniform(0.025, 0.05) * frame.max()
    entry, exit_ = (_edge_corner(int(side), stop, box, frame) for side in rng.integers(4, size=2))
    enter = _leg(entry, stop.astype(np.float64), speed)
    leave = _leg(stop.astype(np.float64), exit_, speed)
    wait = np.repeat(stop[None], int(rng.integers(10, 61)), axis=0)
    corners = np.concatenate([enter, wait, leave[1:]])
    return _Visit(start, corners, _object_pixels(rng, int(box[0]), int(box[1]), level))


def _paste(image: np.ndarray, visit: _Visit, corner: np.ndarray) -> None:
    """Draw the visible part of ``visit.pixels`` with its top-left at ``corner`` (in place)."""
    h, w = visit.pixels.shape[:2]
    y0, x0 = int(corner[0]), int(corner[1])
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + h, image.shape[0]), min(x0 + w, image.shape[1])
    if bottom > top and right > left:
        image[top:bottom, left:right] = visit.pixels[top - y0 : bottom - y0, left - x0 : right - x0]


def generate_static_stream(
    seed: int,
    *,
    frames: int = 300,
    size: tuple[int, int] = (240, 320),
    event_rate: float = 0.01,
    noise: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a fixed camera plus the ground-truth change flags (see the module docstring).

    Args:
        seed: non-negative int; the same arguments give identical arrays.
        frames: stream length ``T`` (>= 1).
        size: ``(height, width)``, each >= 32.
        event_rate: expected object arrivals per frame (each visit moves for roughly 15 to 40
            frames and waits 10 to 60); 0 gives a stream with no events.
        noise: standard deviation of the per-frame Gaussian sensor noise, grey levels (>= 0).

    Returns:
        ``(frames uint8 (T, H, W, 3) RGB, events bool (T,))``.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an argument out of range.
    """
    seed = check_seed(seed)
    count = check_count(frames, "frames", 1)
    height, width = _check_size(size)
    rate = _check_rate(event_rate)
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise <= 50:
        raise ValueError(
            f"noise must be a standard deviation in [0, 50] grey levels; got {noise!r}"
        )
    rng = np.random.default_rng(seed)
    background = _background(rng, height, width)
    level = float(background.mean())
    frame = np.array([height, width])
    arrivals = np.flatnonzero(rng.random(count) < rate)
    visits = [_plan_visit(rng, int(start), frame, level) for start in arrivals]
    return _render(rng, np.clip(np.rint(background), 0, 255).astype(np.uint8), visits, count, noise)


def _render(
    rng: np.random.Generator, background: np.ndarray, visits: list[_Visit], count: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Paste the visits frame by frame, flag changed frames, add sensor noise."""
    video = np.empty((count, *background.shape), dtype=np.uint8)
    events = np.zeros(count, dtype=bool)
    previous = background
    for t in range(count):
        clean = background.copy()
        for visit in visits:
            if 0 <= t - visit.start < len(visit.corners):
                _paste(clean, visit, visit.corners[t - visit.start])
        events[t] = t > 0 and not np.array_equal(clean, previous)
        previous = clean
        grain = rng.standard_normal(background.shape, dtype=np.float32) * np.float32(noise)
        video[t] = np.clip(clean + grain + 0.5, 0, 255).astype(np.uint8)
    return video, events
