"""Synthetic motion clips whose class only the *order* of the frames reveals.

Each clip shows one textured object (disk, square, diamond, triangle or ellipse; two colours
mixed by stripes, a checkerboard or a ramp) on a smooth, colourful background with fresh sensor
noise per frame. The class says how the object changes over the ``T`` frames: it stays put,
translates (``left``/``right``/``up``/``down``), grows (``approach``), shrinks (``recede``) or
turns (``rotate_cw``/``rotate_ccw``, clockwise as seen on screen, y down).

Paired classes are time reversals of each other with the same parameter distribution: a
``left`` path is a ``right`` path played backwards, the midpoint of every path is uniform over
the frame, growth is symmetric about the clip's middle frame and start angles are uniform. So
the *set* of frames of a ``left`` clip is distributed exactly like that of a ``right`` clip, and
an order-blind model (TSN: per-frame features averaged) cannot tell the pair apart, while a
temporal model (TSM) can. ``static`` differs from the moving classes even without order (its
frames all look alike), which an order-blind model may exploit.
"""

from __future__ import annotations

import numpy as np

from ._imagegen import check_count, check_seed, smooth_noise

__all__ = ["MOTION_CLASSES", "generate_motion_clip", "make_motion_dataset"]

MOTION_CLASSES: tuple[str, ...] = (
    "static",
    "left",
    "right",
    "up",
    "down",
    "approach",
    "recede",
    "rotate_cw",
    "rotate_ccw",
)
"""Class names; a label is the index into this tuple."""

_SHAPES = ("disk", "square", "diamond", "triangle", "ellipse")
_TEXTURES = ("stripes", "checker", "ramp")
_NOISE_HALF_WIDTH = 7.0  # per-frame sensor noise, uniform in +-7 grey levels (std 4)
_SQRT3 = float(np.sqrt(3.0))


def _check_label(label: object) -> int:
    if isinstance(label, str):
        if label not in MOTION_CLASSES:
            raise ValueError(f"label must be one of {list(MOTION_CLASSES)}; got {label!r}")
        return MOTION_CLASSES.index(label)
    if isinstance(label, bool) or not isinstance(label, int | np.integer):
        raise TypeError(
            f"label must be a class index in [0, {len(MOTION_CLASSES)}) or a name from "
            f"MOTION_CLASSES; got {type(label).__name__} {label!r}"
        )
    if not 0 <= label < len(MOTION_CLASSES):
        raise ValueError(
            f"label must be in [0, {len(MOTION_CLASSES)}) (see MOTION_CLASSES); got {label}"
        )
    return int(label)


def _path(rng: np.random.Generator, name: str, frames: int, size: int) -> tuple[np.ndarray, ...]:
    """Per-frame ``(cx, cy, radius, angle)``, each float32 ``(T,)``, for class ``name``."""
    ramp = np.linspace(-0.5, 0.5, frames, dtype=np.float32)  # symmetric about the clip middle
    radius = np.full(frames, rng.uniform(0.12, 0.2) * size, dtype=np.float32)
    angle = np.full(frames, rng.uniform(0.0, 2.0 * np.pi), dtype=np.float32)
    if name in ("approach", "recede"):
        growth = np.log(rng.uniform(1.6, 2.3)) * (1.0 if name == "approach" else -1.0)
        radius = radius * np.exp(growth * ramp).astype(np.float32)
    if name in ("rotate_cw", "rotate_ccw"):  # screen clockwise = increasing angle (y points down)
        turn = np.deg2rad(rng.uniform(60.0, 150.0)) * (1.0 if name == "rotate_cw" else -1.0)
        angle = angle + np.float32(turn) * ramp
    across = rng.uniform(0.2, 0.8) * size
    if name not in ("left", "right", "up", "down"):
        centre = rng.uniform(0.2, 0.8) * size
        fixed = np.full(frames, centre, np.float32), np.full(frames, across, np.float32)
        return *fixed, radius, angle
    travel = rng.uniform(0.3, 0.45) * size
    middle = rng.uniform(travel / 2, size - travel / 2)  # uniform over the frame
    sign = -1.0 if name in ("left", "up") else 1.0
    moving = (middle + np.float32(sign * travel) * ramp).astype(np.float32)
    fixed = np.full(frames, across, dtype=np.float32)
    cx, cy = (fixed, moving) if name in ("up", "down") else (moving, fixed)
    return cx, cy, radius, angle


def _signed_distance(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (object units, < 0 inside) of the unit ``shape``."""
    if shape == "disk":
        return np.sqrt(u * u + v * v) - 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.85
    if shape == "diamond":
        return (np.abs(u) + np.abs(v)) * np.float32(0.7071) - 0.8
    if shape == "triangle":
        edge = np.maximum((_SQRT3 * u + v) * 0.5, (-_SQRT3 * u + v) * 0.5)
        return np.maximum(edge, -v) - 0.55
    return np.sqrt(u * u + (v / 0.6) ** 2) * 0.6 - 0.6  # ellipse, axes 1 and 0.6


def _texture(kind: str, u: np.ndarray, v: np.ndarray, freq: float, phase: float) -> np.ndarray:
    """Mixing weight in [0, 1] between the object's two colours, in object coordinates."""
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(freq * u + phase)
    if kind == "checker":
        return np.clip(0.5 + 2.0 * np.sin(freq * u + phase) * np.sin(freq * v), 0.0, 1.0)
    return np.clip(0.5 + 0.5 * u + 0.15 * np.sin(freq * v + phase), 0.0, 1.0)  # ramp


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """float32 ``(S, S, 3)`` static background: base colour + smooth and fine texture."""
    base = rng.uniform(40.0, 215.0, size=3).astype(np.float32)
    smooth = smooth_noise(rng, size, size, cell=rng.uniform(6.0, 16.0)) * rng.uniform(15.0, 35.0)
    fine = (rng.random((size, size, 3), dtype=np.float32) - 0.5) * rng.uniform(10.0, 35.0)
    return base + smooth + fine


def _render(rng: np.random.Generator, label: int, frames: int, size: int) -> np.ndarray:
    """uint8 ``(T, S, S, 3)`` clip of class ``label``."""
    cx, cy, radius, angle = _path(rng, MOTION_CLASSES[label], frames, size)
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    kind = _TEXTURES[rng.integers(len(_TEXTURES))]
    freq, phase = rng.uniform(3.0, 7.0), rng.uniform(0.0, 2.0 * np.pi)
    colours = rng.uniform(0.0, 255.0, size=(2, 3)).astype(np.float32)
    background = _background(rng, size)

    grid = np.arange(size, dtype=np.float32) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]  # (T, 1, S)
    dy = grid[None, :, None] - cy[:, None, None]  # (T, S, 1)
    cos = (np.cos(angle) / radius)[:, None, None]
    sin = (np.sin(angle) / radius)[:, None, None]
    u = dx * cos + dy * sin  # (T, S, S) object coordinates, radius 1
    v = dy * cos - dx * sin
    distance = _signed_distance(shape, u, v) * radius[:, None, None]  # pixels
    alpha = np.clip(0.5 - distance, 0.0, 1.0)[..., None]  # (T, S, S, 1), anti-aliased edge
    weight = _texture(kind, u, v, freq, phase)[..., None]
    clip = weight * (colours[1] - colours[0])  # (T, S, S, 3); in place from here on
    clip += colours[0] - background
    clip *= alpha
    clip += background + 0.5  # + 0.5: the final cast truncates, so this rounds
    noise = rng.random(clip.shape, dtype=np.float32)
    noise -= 0.5
    noise *= 2 * _NOISE_HALF_WIDTH
    clip += noise
    return np.clip(clip, 0.0, 255.0, out=clip).astype(np.uint8)


def _check_sizes(frames: object, size: object) -> tuple[int, int]:
    frames = check_count(frames, "frames", 2)
    size = check_count(size, "size", 16)
    return frames, size


def generate_motion_clip(
    label: int | str, seed: int, *, frames: int = 8, size: int = 64
) -> np.ndarray:
    """One synthetic clip of class ``label`` (index into :data:`MOTION_CLASSES` or its name).

    Returns:
        uint8 ``(frames, size, size, 3)`` RGB; the same arguments give identical arrays.

    Raises:
        TypeError: ``label``, ``seed``, ``frames`` or ``size`` of the wrong type.
        ValueError: unknown label, negative seed, ``frames < 2`` (one frame shows no motion) or
            ``size < 16``.
    """
    label = _check_label(label)
    seed = check_seed(seed)
    frames, size = _check_sizes(frames, size)
    return _render(np.random.default_rng([seed, label]), label, frames, size)


def make_motion_dataset(
    n_per_class: int, seed: int, *, frames: int = 8, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced, shuffled set of motion clips.

    Clip ``i`` is rendered from its own generator spawned from ``seed``, so the set is
    reproducible and independent of the order of rendering.

    Returns:
        ``(clips, labels)``: uint8 ``(N, frames, size, size, 3)`` and int64 ``(N,)`` with
        ``N = n_per_class * len(MOTION_CLASSES)``, each class exactly ``n_per_class`` times.

    Raises:
        TypeError / ValueError: as :func:`generate_motion_clip`; ``n_per_class < 1``.
    """
    n_per_class = check_count(n_per_class, "n_per_class", 1)
    seed = check_seed(seed)
    frames, size = _check_sizes(frames, size)
    root = np.random.default_rng(seed)
    labels = root.permutation(np.repeat(np.arange(len(MOTION_CLASSES)), n_per_class))
    children = np.random.SeedSequence(seed).spawn(len(labels))
    clips = np.empty((len(labels), frames, size, size, 3), dtype=np.uint8)
    for index, (label, child) in enumerate(zip(labels, children, strict=True)):
        clips[index] = _render(np.random.default_rng(child), int(label), frames, size)
    return clips, labels.astype(np.int64)
