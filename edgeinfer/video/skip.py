"""Frame skipping: a training-free change gate in front of a streaming model.

:class:`FrameGate` compares a tiny grey thumbnail of each frame with the thumbnail of the last
frame the network *processed*. The thumbnail is a strided view (every ``H // rows``-th row and
``W // cols``-th column, starting half a step in) turned grey with integer weights
``(77 R + 150 G + 29 B) >> 8``: no resize, no float, a few hundred pixels touched, so the gate
costs microseconds even on a 720p frame. The change score is

    score = mean over thumbnail pixels of max(|grey_now - grey_processed| - noise_floor, 0)

in grey levels; ``noise_floor`` is a per-pixel dead zone that absorbs sensor noise (0 gives the
plain mean absolute difference). A frame runs the network when it is the first, when
``score >= threshold``, or when ``max_skip`` frames in a row have been skipped; otherwise the
caller reuses the last output. ``threshold=0`` (or ``max_skip=0``) runs every frame.

:class:`GatedRunner` puts a gate in front of a :class:`~edgeinfer.video.StreamingRunner`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .stream import StreamingRunner

__all__ = ["FrameGate", "GateConfig", "GateStats", "GatedRunner", "frame_to_tensor"]

_GREY_WEIGHTS = np.array([77, 150, 29], dtype=np.uint16)  # sum 256: grey = (w . rgb) >> 8


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class GateConfig:
    """When :class:`FrameGate` lets a frame through (see the module docstring).

    Attributes:
        threshold: run when the change score (grey levels, >= 0) reaches this; 0 runs all.
        max_skip: force a run after this many consecutive skipped frames (>= 0; 0 runs all).
        noise_floor: per-pixel dead zone in grey levels (0..255) ignored as sensor noise.
        thumbnail: ``(rows, cols)`` of the sampled grey thumbnail (fewer on smaller frames).

    Raises:
        TypeError: a field of the wrong type.
        ValueError: a field out of range.
    """

    threshold: float = 0.1
    max_skip: int = 30
    noise_floor: int = 12
    thumbnail: tuple[int, int] = (18, 32)

    def __post_init__(self) -> None:
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(f"threshold must be a float >= 0; got {threshold!r}")
        if not (math.isfinite(threshold) and threshold >= 0):
            raise ValueError(
                f"threshold must be a finite float >= 0 (grey levels); got {threshold}"
            )
        for name, low, high in (("max_skip", 0, None), ("noise_floor", 0, 255)):
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
            if value < low or (high is not None and value > high):
                bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
                raise ValueError(f"{name} must be {bound}; got {value}")
        shape = self.thumbnail
        if not (
            isinstance(shape, tuple)
            and len(shape) == 2
            and all(_is_int(s) and s >= 1 for s in shape)
        ):
            raise ValueError(f"thumbnail must be (rows, cols) with ints >= 1; got {shape!r}")


@dataclass(frozen=True)
class GateStats:
    """How many frames a gate let through (``processed``) and held back (``skipped``)."""

    processed: int
    skipped: int

    @property
    def total(self) -> int:
        """Frames seen."""
        return self.processed + self.skipped

    @property
    def skip_ratio(self) -> float:
        """``skipped / total`` (0.0 before the first frame)."""
        return self.skipped / self.total if self.total else 0.0


def _check_frame(frame: object) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        got = f"{frame.dtype} array" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise TypeError(f"frame must be a uint8 numpy array (H, W, 3) RGB; got {got}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame must have shape (H, W, 3) RGB; got {frame.shape}")
    return frame


def _sampler(height: int, width: int, rows: int, cols: int) -> tuple[slice, slice]:
    """Row and column slices picking at most ``rows x cols`` evenly spread pixels."""
    step_y, step_x = max(height // rows, 1), max(width // cols, 1)
    return (
        slice(step_y // 2, step_y // 2 + step_y * min(rows, height), step_y),
        slice(step_x // 2, step_x // 2 + step_x * min(cols, width), step_x),
    )


class FrameGate:
    """Decide per frame whether to run the network (True) or reuse the last output (False).

    Stateful: it keeps the last processed thumbnail and the run of skipped frames; one gate
    per stream. All frames of a stream must have the size of the first (:meth:`reset` starts
    a new stream).

    Raises:
        TypeError: ``config`` is not a :class:`GateConfig`.
    """

    def __init__(self, config: GateConfig | None = None) -> None:
        config = GateConfig() if config is None else config
        if not isinstance(config, GateConfig):
            raise TypeError(f"config must be a GateConfig; got {type(config).__name__}")
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame runs and sets the reference; counts restart."""
        self._reference: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None
        self._slices: tuple[slice, slice] = (slice(None), slice(None))
        self._run_of_skips = 0
        self._processed = 0
        self._skipped = 0
        self.last_score = math.inf

    @property
    def stats(self) -> GateStats:
        """Frames processed and skipped since the last :meth:`reset`."""
        return GateStats(self._processed, self._skipped)

    def thumbnail(self, frame: np.ndarray) -> np.ndarray:
        """int16 ``(rows, cols)`` grey thumbnail of uint8 ``(H, W, 3)`` ``frame`` (0..255)."""
        frame = _check_frame(frame)
        rows, cols = self.config.thumbnail
        return self._thumb(frame[_sampler(frame.shape[0], frame.shape[1], rows, cols)])

    @staticmethod
    def _thumb(sampled: np.ndarray) -> np.ndarray:
        grey = np.dot(sampled, _GREY_WEIGHTS)  # uint16, at most 255 * 256: no overflow
        grey >>= 8
        return grey.view(np.int16)

    def decide(self, frame: np.ndarray) -> bool:
        """True to run the network on ``frame`` (uint8 ``(H, W, 3)`` RGB), False to skip it.

        Raises:
            TypeError: not a uint8 numpy array.
            ValueError: not ``(H, W, 3)``, or a size differing from the stream's first frame.
        """
        if frame.__class__ is not np.ndarray or frame.dtype != np.uint8 or frame.ndim != 3:
            _check_frame(frame)
        if frame.shape != self._shape:
            self._start(_check_frame(frame))
        current = self._thumb(frame[self._slices])
        config = self.config
        if self._reference is None:
            run = True
        else:
            diff = current - self._reference
            np.abs(diff, out=diff)
            diff -= config.noise_floor
            np.maximum(diff, 0, out=diff)
            self.last_score = int(diff.sum()) / diff.size
            run = self.last_score >= config.threshold or self._run_of_skips >= config.max_skip
        if run:
            self._reference = current
            self._run_of_skips = 0
            self._processed += 1
        else:
            self._run_of_skips += 1
            self._skipped += 1
        return run

    def _start(self, frame: np.ndarray) -> None:
        if self._shape is not None:
            raise ValueError(
                f"frame size changed mid-stream: expected {self._shape} as on the first frame, "
                f"got {frame.shape}; resize frames to one size or call reset() first"
            )
        self._shape = frame.shape
        self._slices = _sampler(frame.shape[0], frame.shape[1], *self.config.thumbnail)


def frame_to_tensor(frame: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` RGB -> float32 ``(1, 3, H, W)`` in [0, 1] (no mean/std)."""
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().div_(255)


class GatedRunner:
    """Run a :class:`StreamingRunner` only on frames its :class:`FrameGate` lets through.

    ``step(frame)`` returns fresh logits ``(1, num_classes)`` for a processed frame and the
    *same tensor* as last time for a skipped one. The shift buffers advance on processed frames
    only, so the temporal shift mixes the current frame's features with those of the last
    *processed* frame: the effective temporal stride is the gap between processed frames,
    1 to ``max_skip + 1`` frames and varying with the content (a model trained at stride 1 sees
    longer strides during quiet spells, when the features barely change anyway). With
    ``threshold=0`` or ``max_skip=0`` every frame is processed and the logits equal the plain
    runner's exactly.

    Args:
        runner: the streaming runner of a causal (or TSN) model.
        gate: the change gate; a fresh ``FrameGate()`` when omitted.
        preprocess: uint8 ``(H, W, 3)`` frame -> float ``(1, 3, H, W)`` model input; default
            :func:`frame_to_tensor`. Only called on processed frames.

    Raises:
        TypeError: ``runner`` not a StreamingRunner, ``gate`` not a FrameGate, or
            ``preprocess`` not callable.
    """

    def __init__(
        self,
        runner: StreamingRunner,
        gate: FrameGate | None = None,
        preprocess: Callable[[np.ndarray], torch.Tensor] = frame_to_tensor,
    ) -> None:
        if not isinstance(runner, StreamingRunner):
            raise TypeError(
                f"runner must be a StreamingRunner (StreamingRunner(model)); "
                f"got {type(runner).__name__}"
            )
        gate = FrameGate() if gate is None else gate
        if not isinstance(gate, FrameGate):
            raise TypeError(f"gate must be a FrameGate; got {type(gate).__name__}")
        if not callable(preprocess):
            raise TypeError(f"preprocess must be callable; got {type(preprocess).__name__}")
        self.runner, self.gate, self.preprocess = runner, gate, preprocess
        self._logits: torch.Tensor | None = None

    @property
    def stats(self) -> GateStats:
        """Frames processed and skipped since the last :meth:`reset`."""
        return self.gate.stats

    def reset(self) -> None:
        """Start a new stream: clears the gate, the shift buffers and the cached logits."""
        self.runner.reset()
        self.gate.reset()
        self._logits = None

    def step(self, frame: np.ndarray) -> torch.Tensor:
        """Logits ``(1, num_classes)`` for uint8 ``(H, W, 3)`` RGB ``frame``.

        Raises:
            TypeError / ValueError: as :meth:`FrameGate.decide` and :meth:`StreamingRunner.step`.
        """
        if self.gate.decide(frame) or self._logits is None:
            self._logits = self.runner.step(self.preprocess(frame))
        return self._logits
