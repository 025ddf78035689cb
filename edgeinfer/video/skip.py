"""Frame skipping: a training-free change gate in front of a streaming model.

:class:`FrameGate` compares a tiny grey thumbnail of each frame with the thumbnail of the last
frame the network *processed*. The thumbnail is a strided view (every ``H // rows``-th row and
``W // cols``-th column, starting half a step in) turned grey with integer weights
``(77 R + 150 G + 29 B) >> 8``: no resize, no float, a few hundred pixels touched, so the gate
costs microseconds even on a 720p frame. The change score is

    score = mean over thumbnail pixels of max(|grey_now - grey_processed| - noise_floor, 0)

in grey levels; ``noise_floor`` is a per-pixel dead zone that absorbs sensor noise (0 gives the
plain mean absolute difference). A frame *changed* when it is the first or ``score >=
threshold``. A frame runs the network when it changed, while the network is still *settling*
(fewer than ``settle`` quiet frames processed since the last change), or when ``max_skip``
frames in a row have been skipped; otherwise the caller reuses the last output.
``threshold=0`` (or ``max_skip=0``) runs every frame.

Why settle: a streaming TSM is not memoryless. Its output at frame ``t`` depends on frames
``t - D .. t``, ``D`` = its number of shift sites (each shifted block reads the previous
frame's features of the block before it), so after the picture stops changing the every-frame
output keeps moving for ``D`` more frames (at stream start the zero buffers play the part of
a black past). Reusing the output of the change frame itself would freeze a transient that
the every-frame model moves on from. After ``D`` quiet processed frames the shift buffers hold
the still scene's features everywhere and further quiet frames give the same output up to
sensor noise, which is when skipping is safe. A ``max_skip`` refresh is not a change: it does
not restart settling.

:class:`GatedRunner` puts a gate in front of a :class:`~edgeinfer.video.StreamingRunner` and
sets the gate's ``settle`` to the model's temporal depth unless the config fixes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .delta import DeltaRunner
from .stream import StreamingRunner

__all__ = [
    "FrameGate", "GateConfig", "GateStats", "GatedRunner", "frame_to_tensor", "logit_jitter",
    "top_margin",
]

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
        settle: quiet frames to keep processing after a change before skipping (>= 0);
            ``None``: the ``temporal_depth`` the gate is built with (a :class:`GatedRunner`
            uses its model's number of shift sites; 0 for a memoryless model).

    Raises:
        TypeError: a field of the wrong type.
        ValueError: a field out of range.
    """

    threshold: float = 0.1
    max_skip: int = 30
    noise_floor: int = 12
    thumbnail: tuple[int, int] = (18, 32)
    settle: int | None = None

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
        if self.settle is not None:
            _check_count(self.settle, "settle", "None or an int >= 0 (quiet frames)")


def _check_count(value: object, name: str, expected: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be {expected}; got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be {expected}; got {value}")
    return value


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


_GATE_STATE = (
    "_reference", "_shape", "_slices", "_run_of_skips", "_quiet", "_processed", "_skipped",
    "last_score",
)


class FrameGate:
    """Decide per frame whether to run the network (True) or reuse the last output (False).

    Stateful: it keeps the last processed thumbnail, the quiet frames processed since the last
    change and the run of skipped frames; one gate per stream. All frames of a stream must have
    the size of the first (:meth:`reset` starts a new stream).

    Args:
        config: thresholds and sizes; ``GateConfig()`` when omitted.
        temporal_depth: frames the gated model's output looks back (a causal TSM: its number
            of shift sites); used as ``settle`` when ``config.settle`` is None.

    Raises:
        TypeError: ``config`` is not a :class:`GateConfig`; ``temporal_depth`` not an int.
        ValueError: ``temporal_depth < 0``.
    """

    def __init__(self, config: GateConfig | None = None, *, temporal_depth: int = 0) -> None:
        config = GateConfig() if config is None else config
        if not isinstance(config, GateConfig):
            raise TypeError(f"config must be a GateConfig; got {type(config).__name__}")
        self.config = config
        self.temporal_depth = temporal_depth
        self.reset()

    @property
    def temporal_depth(self) -> int:
        """The model's look-back in frames (``settle`` when the config leaves it None)."""
        return self._temporal_depth

    @temporal_depth.setter
    def temporal_depth(self, value: int) -> None:
        self._temporal_depth = _check_count(value, "temporal_depth", "an int >= 0 (frames)")

    @property
    def settle(self) -> int:
        """Quiet frames processed after a change before frames are skipped."""
        settle = self.config.settle
        return self._temporal_depth if settle is None else settle

    def reset(self) -> None:
        """Forget the stream: the next frame runs and sets the reference; counts restart."""
        self._reference: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None
        self._slices: tuple[slice, slice] = (slice(None), slice(None))
        self._run_of_skips = 0
        self._quiet = 0  # quiet frames processed since the last change
        self._processed = 0
        self._skipped = 0
        self.last_score = math.inf

    @property
    def stats(self) -> GateStats:
        """Frames processed and skipped since the last :meth:`reset`."""
        return GateStats(self._processed, self._skipped)

    def state(self) -> dict[str, object]:
        """A snapshot of the stream state for :meth:`restore` (the arrays are never modified
        in place, only replaced, so the snapshot shares them)."""
        return {name: getattr(self, name) for name in _GATE_STATE}

    def restore(self, state: dict[str, object]) -> None:
        """Return to a :meth:`state` snapshot (undo a frame whose processing failed)."""
        for name in _GATE_STATE:
            setattr(self, name, state[name])

    def thumbnail(self, frame: np.ndarray) -> np.ndarray:
        """int16 ``(rows, cols)`` grey thumbnail of uint8 ``(H, W, 3)`` ``frame`` (0..255)."""
        frame = _check_frame(frame)
        rows, cols = self.config.thumbnail
        return self._thumb(frame[_sampler(frame.shape[0], frame.shape[1], rows, cols)])

    @staticmethod
    def _thumb(sampled: np.ndarray) -> np.ndarray:
        # uint16, at most 255 * 256: no overflow; widening first beats letting np.dot mix
        # uint8 and uint16 on the strided sample (~20% less per thumbnail, measured)
        grey = sampled.astype(np.uint16) @ _GREY_WEIGHTS
        grey >>= 8
        return grey.view(np.int16)

    def decide(self, frame: np.ndarray, *, force: bool = False) -> bool:
        """True to run the network on ``frame`` (uint8 ``(H, W, 3)`` RGB), False to skip it.

        Runs when the frame changed (the first frame, or ``score >= threshold`` against the
        last processed frame), while settling after a change, as a ``max_skip`` refresh, or
        when ``force`` is True (the caller cannot reuse its last output; counted as processed).

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
            changed = True
        else:
            diff = current - self._reference
            np.abs(diff, out=diff)
            diff -= config.noise_floor
            np.maximum(diff, 0, out=diff)
            self.last_score = int(diff.sum()) / diff.size
            changed = self.last_score >= config.threshold
        if changed:
            self._quiet = 0
        run = (changed or force or self._quiet < self.settle
               or self._run_of_skips >= config.max_skip)
        if run:
            self._quiet += not changed
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

    The runner may also be a :class:`~edgeinfer.video.DeltaRunner`: skipped frames then cost
    nothing and processed ones recompute the early stages only where the picture changed since
    the last *processed* frame (its reference follows the processed frames, like the shift
    buffers).

    ``step(frame)`` returns fresh logits ``(1, num_classes)`` for a processed frame and the
    *same tensor* as last time for a skipped one. The shift buffers advance on processed frames
    only, so the temporal shift mixes the current frame's features with those of the last
    *processed* frame: the effective temporal stride is the gap between processed frames,
    1 to ``max_skip + 1`` frames. It is 1 while the picture changes and while the network
    settles (the gate's ``settle`` quiet frames after each change, by default the model's
    number of shift sites), and longer only across skipped runs of quiet frames, whose shift
    buffers then already hold the still scene, so a longer stride feeds the same features (up
    to sensor noise) as stride 1 would: the reused output is what processing every frame
    gives. Settling runs read their frames: the last moves of an object that stops can be
    below the gate's threshold yet visible to the network, and a settled state built on the
    changed frame alone would miss them. With ``threshold=0`` or ``max_skip=0`` every frame is
    processed and the logits equal the plain runner's exactly.

    Near ties: on a still scene the every-frame logits jitter with the sensor noise, and when
    the top two classes are closer than that jitter the every-frame prediction flips from
    frame to frame; reusing one processed frame's answer then disagrees with many of them.
    ``min_margin`` guards against it: the last output is reused only when its top-1 minus
    top-2 logit gap is at least ``min_margin`` (in logits, model-dependent: about twice the
    largest logit change between two noisy frames of a still scene, see :func:`logit_jitter`);
    otherwise the frame is processed (:meth:`FrameGate.decide` with ``force=True``).

    Args:
        runner: the streaming runner (or delta runner) of a causal (or TSN) model.
        gate: the change gate; ``FrameGate()`` when omitted. Its ``temporal_depth`` is set to
            the model's number of shift sites (0 for TSN), the ``settle`` it uses unless its
            config fixes one.
        preprocess: uint8 ``(H, W, 3)`` frame -> float ``(1, 3, H, W)`` model input; default
            :func:`frame_to_tensor`. Only called on processed frames.
        min_margin: reuse an output only when its top-two logit gap reaches this (>= 0; 0:
            always, when the gate skips; ``inf``: never, every frame runs).

    Raises:
        TypeError: ``runner`` not a StreamingRunner or DeltaRunner, ``gate`` not a FrameGate,
            ``preprocess`` not callable, or ``min_margin`` not a number.
        ValueError: ``min_margin`` negative or nan.
    """

    def __init__(
        self,
        runner: StreamingRunner | DeltaRunner,
        gate: FrameGate | None = None,
        preprocess: Callable[[np.ndarray], torch.Tensor] = frame_to_tensor,
        *,
        min_margin: float = 0.0,
    ) -> None:
        if not isinstance(runner, StreamingRunner | DeltaRunner):
            raise TypeError(
                f"runner must be a StreamingRunner or DeltaRunner (StreamingRunner(model)); "
                f"got {type(runner).__name__}"
            )
        gate = FrameGate() if gate is None else gate
        if not isinstance(gate, FrameGate):
            raise TypeError(f"gate must be a FrameGate; got {type(gate).__name__}")
        gate.temporal_depth = runner.model.num_shift_sites  # output looks back this many frames
        if not callable(preprocess):
            raise TypeError(f"preprocess must be callable; got {type(preprocess).__name__}")
        if isinstance(min_margin, bool) or not isinstance(min_margin, int | float):
            raise TypeError(f"min_margin must be a float >= 0 (logits); got {min_margin!r}")
        if not min_margin >= 0:  # also rejects nan; inf: never reuse, every frame runs
            raise ValueError(f"min_margin must be a float >= 0 (logits); got {min_margin}")
        self.runner, self.gate, self.preprocess = runner, gate, preprocess
        self.min_margin = float(min_margin)
        self._logits: torch.Tensor | None = None
        self._reusable = False

    @property
    def stats(self) -> GateStats:
        """Frames processed and skipped since the last :meth:`reset`."""
        return self.gate.stats

    def reset(self) -> None:
        """Start a new stream: clears the gate, the shift buffers and the cached logits."""
        self.runner.reset()
        self.gate.reset()
        self._logits = None
        self._reusable = False

    def step(self, frame: np.ndarray) -> torch.Tensor:
        """Logits ``(1, num_classes)`` for uint8 ``(H, W, 3)`` RGB ``frame``.

        When ``preprocess`` or the runner raises, the gate, the runner and the cached logits
        are left as before the call: the next frame continues the undisturbed stream.

        Raises:
            TypeError / ValueError: as :meth:`FrameGate.decide` and :meth:`StreamingRunner.step`.
        """
        before = self.gate.state()
        try:
            if self.gate.decide(frame, force=not self._reusable):
                logits = self.runner.step(self.preprocess(frame))
                self._logits, self._reusable = logits, top_margin(logits) >= self.min_margin
        except BaseException:
            # the gate counted the frame as processed and moved its reference: undo that, so
            # a frame that failed in preprocess or the network is as if never offered
            self.gate.restore(before)
            raise
        assert self._logits is not None  # the first frame always runs
        return self._logits


def top_margin(logits: torch.Tensor) -> float:
    """Smallest top-1 minus top-2 gap over the rows of ``logits (B, K)`` (inf when ``K == 1``)."""
    if logits.shape[-1] < 2:
        return math.inf
    top = logits.topk(2, dim=-1).values
    return float((top[..., 0] - top[..., 1]).min())


def logit_jitter(
    runner: StreamingRunner, frames: Sequence[np.ndarray],
    preprocess: Callable[[np.ndarray], torch.Tensor] = frame_to_tensor,
) -> float:
    """The largest change of any logit between consecutive frames of a still clip, once the
    model has settled: the sensor-noise jitter that ``GatedRunner(min_margin=...)`` must beat.

    ``frames``: uint8 ``(H, W, 3)`` frames of a scene where nothing moves (only sensor noise),
    more than ``D + 1`` of them (``D`` = the model's shift sites). The runner is reset first
    and afterwards. A top-two gap changes by at most twice this between two such frames.

    Raises:
        ValueError: too few frames.
    """
    settle = runner.model.num_shift_sites
    if len(frames) < settle + 2:
        raise ValueError(
            f"frames must hold at least {settle + 2} still frames (the model settles over "
            f"{settle}); got {len(frames)}"
        )
    runner.reset()
    logits = torch.cat([runner.step(preprocess(frame)) for frame in frames])[settle:]
    runner.reset()
    return float((logits[1:] - logits[:-1]).abs().max())
