"""``VideoClassifier``: frames in, classes and scores per clip or per frame out.

The batch unit of the video engine (see ``edgeinfer._predictor``): one object that loads its
checkpoint once where it runs and classifies any number of videos.

- ``mode="clip"``: the video is cut into consecutive windows of ``clip_length`` frames (the
  last may be shorter); from each, ``n_segment`` frames spread evenly over it (each segment's
  middle frame, TSN's test-time sampling) form one clip for the offline model.
- ``mode="stream"``: every frame goes through the causal streaming model, in order; with a
  ``gate`` (:class:`GateConfig`) frames the gate judges unchanged reuse the last prediction and
  are reported as skipped.

Frames are uint8 ``(H, W, 3)`` RGB (``read_video``'s); each is resized to the checkpoint's
input size by area averaging and put in its colour order (the model normalises itself).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .._predictor import Predictor
from .skip import GateConfig

__all__ = ["ClipPrediction", "FramePrediction", "VideoClassifier"]

MODES = ("clip", "stream")


@dataclass(frozen=True)
class ClipPrediction:
    """One window of a video: frames ``first..last`` (inclusive), its class id and softmax
    probability."""

    clip: int
    first: int
    last: int
    label: int
    score: float


@dataclass(frozen=True)
class FramePrediction:
    """One frame of a stream: its class id and softmax probability; ``skipped`` when the gate
    reused the previous processed frame's prediction."""

    frame: int
    label: int
    score: float
    skipped: bool


def _check_frame(frame: object, index: int) -> np.ndarray:
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ValueError(f"frame {index} must be uint8 (H, W, 3) RGB; got {array.dtype} of shape "
                         f"{array.shape}")  # fmt: skip
    return array


def segment_middles(length: int, n_segment: int) -> np.ndarray:
    """Indices of ``n_segment`` frames spread over ``length`` frames: each equal segment's
    middle frame (repeats when ``length < n_segment``)."""
    edges = np.arange(n_segment) * length / n_segment + length / (2 * n_segment)
    return np.minimum(np.floor(edges).astype(np.int64), length - 1)


class VideoClassifier(Predictor):
    """Clip or streaming classification with a video checkpoint.

    Args:
        model: what ``video.load_pretrained`` accepts (a shipped name or a checkpoint file:
            edgeinfer, official TSM).
        mode: ``"clip"`` (offline model over windows) or ``"stream"`` (causal, per frame).
        gate: stream mode only: a :class:`GateConfig` to skip unchanged frames (``None``:
            every frame runs).
        clip_length: clip mode: frames per window (default: the model's ``n_segment``).
        source: passed to ``load_pretrained``.
        threads: torch threads per call (``None``: the process's setting).

    Raises:
        ValueError / TypeError: a bad ``mode``, ``gate``, ``clip_length`` or ``threads``; at
            the first call, the errors of ``load_pretrained``.
    """

    engine = "video"

    def __init__(
        self, model: str | os.PathLike[str] = "tsm", *, mode: str = "clip",
        gate: GateConfig | None = None, clip_length: int | None = None,
        source: str | None = None, threads: int | None = None,
    ) -> None:
        super().__init__(threads)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}; got {mode!r}")
        if gate is not None and not isinstance(gate, GateConfig):
            raise TypeError(f"gate must be None or a GateConfig; got {type(gate).__name__}")
        if gate is not None and mode != "stream":
            raise ValueError("gate is for mode='stream' (a clip's frames all run); got "
                             "mode='clip'")  # fmt: skip
        if clip_length is not None and (isinstance(clip_length, bool) or not isinstance(
                clip_length, int) or clip_length < 1):
            raise ValueError(f"clip_length must be None or an int >= 1; got {clip_length!r}")
        if clip_length is not None and mode != "clip":
            raise ValueError("clip_length is for mode='clip'")
        self.model, self.mode, self.gate = os.fspath(model), mode, gate
        self.clip_length, self.source = clip_length, source

    def describe(self) -> Mapping[str, Any]:
        gate = None if self.gate is None else asdict(self.gate)
        return {**super().describe(), "model": self.model, "mode": self.mode, "gate": gate,
                "clip_length": self.clip_length, "source": self.source}  # fmt: skip

    def _load(self):
        from .pretrained import load_pretrained

        shift = "causal" if self.mode == "stream" else None
        options = {"shift": shift, "source": self.source}
        model, info = load_pretrained(self.model, **{k: v for k, v in options.items()
                                                     if v is not None})  # fmt: skip
        return model.eval(), info

    @property
    def window(self) -> int:
        """Frames per clip-mode window (loads the model for its ``n_segment``)."""
        return self.clip_length or self.loaded[0].config.n_segment

    def _prepare(self, frame: np.ndarray, info) -> torch.Tensor:
        from .skip import frame_to_tensor

        tensor = frame_to_tensor(frame)  # (1, 3, H, W) RGB in [0, 1]
        if info.input.colour_order == "BGR":
            tensor = tensor.flip(1)
        if tuple(tensor.shape[2:]) != info.input.size:
            tensor = torch.nn.functional.interpolate(tensor, size=info.input.size, mode="area")
        return tensor

    def classify_clips(self, frames: Iterable[np.ndarray]) -> Iterator[ClipPrediction]:
        """Clip mode: one :class:`ClipPrediction` per window of ``frames`` (an array ``(T, H,
        W, 3)`` or any iterable of frames: windows are formed as frames arrive, so a long
        video is never held whole).

        Raises:
            ValueError: mode is not ``"clip"``, or a frame that is not uint8 ``(H, W, 3)``.
        """
        if self.mode != "clip":
            raise ValueError(f"classify_clips needs mode='clip'; this classifier is "
                             f"mode={self.mode!r}")  # fmt: skip
        window, pending, first, clip = self.window, [], 0, 0
        for index, frame in enumerate(frames):
            pending.append(_check_frame(frame, index))
            if len(pending) == window:
                yield self._clip(pending, clip, first)
                first, clip, pending = index + 1, clip + 1, []
        if pending:
            yield self._clip(pending, clip, first)

    def _clip(self, frames: list[np.ndarray], clip: int, first: int) -> ClipPrediction:
        with self._running() as (model, info):
            chosen = segment_middles(len(frames), model.config.n_segment)
            batch = torch.cat([self._prepare(frames[i], info) for i in chosen])  # (T, 3, h, w)
            logits = model(batch)[0]
            probability, label = torch.softmax(logits.float(), dim=0).max(dim=0)
        return ClipPrediction(clip, first, first + len(frames) - 1, int(label),
                              float(probability))  # fmt: skip

    def classify_stream(self, frames: Iterable[np.ndarray]) -> Iterator[FramePrediction]:
        """Stream mode: one :class:`FramePrediction` per frame, in order (the stream's state
        starts fresh for each call: one call per video).

        Raises:
            ValueError: mode is not ``"stream"``, a bad frame, or the runner's errors (a frame
                size that changes mid-stream).
        """
        from .skip import FrameGate, GatedRunner
        from .stream import StreamingRunner

        if self.mode != "stream":
            raise ValueError(f"classify_stream needs mode='stream'; this classifier is "
                             f"mode={self.mode!r}")  # fmt: skip
        model, info = self.loaded
        runner = StreamingRunner(model)
        gated = None
        if self.gate is not None:
            gated = GatedRunner(runner, FrameGate(self.gate),
                                preprocess=lambda f: self._prepare(f, info))  # fmt: skip
        for index, frame in enumerate(frames):
            frame = _check_frame(frame, index)
            with self._running():
                if gated is None:
                    logits, skipped = runner.step(self._prepare(frame, info)), False
                else:
                    before = gated.stats.processed
                    logits = gated.step(frame)
                    skipped = gated.stats.processed == before
                probability, label = torch.softmax(logits.reshape(-1).float(), dim=0).max(dim=0)
            yield FramePrediction(index, int(label), float(probability), skipped)

    def classify(self, frames: Iterable[np.ndarray]) -> list[ClipPrediction | FramePrediction]:
        """All predictions of one video in this classifier's mode (a list)."""
        if self.mode == "clip":
            return list(self.classify_clips(frames))
        return list(self.classify_stream(frames))

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        """The batch protocol (a loop, Dask, Ray Data's ``map_batches``): ``{"frames": [(T_i,
        H, W, 3) uint8, ...], other columns...}`` -> the other columns unchanged plus
        ``"labels"`` and ``"scores"`` (per clip or per frame of each video, int32 and float32
        arrays; stream mode adds ``"skipped"``)."""
        if not isinstance(batch, Mapping) or "frames" not in batch:
            raise TypeError("batch must be a mapping with a 'frames' column (one (T, H, W, 3) "
                            f"uint8 array per video); got {type(batch).__name__}")  # fmt: skip
        out: dict[str, Any] = {k: v for k, v in batch.items() if k != "frames"}
        out.update(labels=[], scores=[])
        if self.mode == "stream":
            out["skipped"] = []
        for video in batch["frames"]:
            rows = self.classify(video)
            out["labels"].append(np.array([r.label for r in rows], dtype=np.int32))
            out["scores"].append(np.array([r.score for r in rows], dtype=np.float32))
            if self.mode == "stream":
                out["skipped"].append(np.array([r.skipped for r in rows], dtype=bool))
        return out
