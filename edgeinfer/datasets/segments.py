"""TSN segment sampling: which frames of a video make a ``T``-frame clip."""

from __future__ import annotations

import numpy as np

from ._imagegen import check_count

__all__ = ["SEGMENT_MODES", "sample_segments"]

SEGMENT_MODES: tuple[str, ...] = ("center", "random")
"""``"center"``: the middle frame of each segment (evaluation); ``"random"``: a uniformly
random frame of each segment (training-time augmentation)."""


def sample_segments(
    num_frames: int,
    n_segment: int,
    *,
    mode: str = "center",
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Split ``num_frames`` into ``n_segment`` equal spans and pick one frame index in each.

    Span ``k`` covers ``[k * L, (k + 1) * L)`` with ``L = num_frames / n_segment`` (not rounded,
    so every frame belongs to exactly one span). With fewer frames than segments the spans are
    shorter than one frame and neighbouring segments share a frame: indices repeat, in order
    (e.g. 3 frames, 8 segments, ``"center"`` -> ``[0, 0, 0, 1, 1, 2, 2, 2]``), so the clip still
    has ``n_segment`` frames and keeps the video's time order.

    Args:
        num_frames: frames in the video (>= 1).
        n_segment: frames wanted ``T`` (>= 1).
        mode: one of :data:`SEGMENT_MODES`.
        rng: a ``np.random.Generator`` or an int seed; required for ``"random"``.

    Returns:
        int64 ``(n_segment,)`` non-decreasing indices in ``[0, num_frames)``.

    Raises:
        TypeError: counts not ints, or ``rng`` neither a Generator nor an int.
        ValueError: counts < 1, unknown ``mode``, or ``"random"`` without ``rng``.
    """
    num_frames = check_count(num_frames, "num_frames", 1)
    n_segment = check_count(n_segment, "n_segment", 1)
    if mode not in SEGMENT_MODES:
        raise ValueError(f"mode must be one of {list(SEGMENT_MODES)}; got {mode!r}")
    span = num_frames / n_segment
    starts = np.arange(n_segment, dtype=np.float64) * span
    if mode == "center":
        offsets = np.full(n_segment, 0.5 * span)
    else:
        offsets = _generator(rng).random(n_segment) * span
    indices = np.floor(starts + offsets).astype(np.int64)
    return np.clip(indices, 0, num_frames - 1)  # guards float rounding at the last span's end


def _generator(rng: object) -> np.random.Generator:
    if rng is None:
        raise ValueError(
            "mode='random' needs rng: pass rng=np.random.default_rng(seed) or an int seed "
            "(sampling is reproducible only from an explicit seed)"
        )
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a np.random.Generator or a non-negative int; got {rng!r}")
