"""Video files through OpenCV (imported when a file is touched), frames as uint8 RGB.

Readers decode sequentially (seeking is unreliable across codecs). Damage policy, chosen so
that data is never dropped silently:

- a file that is missing raises ``FileNotFoundError``; one OpenCV cannot open, or that holds no
  frame, raises :class:`VideoFileError` naming the file;
- a frame that fails to decode while later frames still decode is a *corrupt frame*; a stream
  that stops before the frame count in its header is *truncated*. With ``on_error="raise"``
  (default) both raise :class:`CorruptFrameError` naming the file and the frame index; with
  ``on_error="skip"`` the frame (or the missing tail) is left out and a
  :class:`CorruptFrameWarning` names it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ._arrays import as_path
from .segments import sample_segments

__all__ = [
    "ON_ERROR",
    "VIDEO_CODECS",
    "CorruptFrameError",
    "CorruptFrameWarning",
    "VideoFileError",
    "VideoInfo",
    "VideoWriter",
    "iter_video_frames",
    "read_clip",
    "read_video",
    "video_info",
    "write_video",
]

VIDEO_CODECS: tuple[str, ...] = ("mp4v", "MJPG")
"""FourCC codes :func:`write_video` accepts (both are in every OpenCV build)."""

ON_ERROR: tuple[str, ...] = ("raise", "skip")
"""What readers do with a corrupt frame or a truncated stream (see the module docstring)."""


class VideoFileError(ValueError):
    """A video file that cannot be opened, holds no frame, or is damaged."""


class CorruptFrameError(VideoFileError):
    """Frame ``index`` of ``path`` could not be decoded (``truncated``: nor any after it)."""

    def __init__(self, message: str, path: Path, index: int, truncated: bool) -> None:
        super().__init__(message)
        self.path, self.index, self.truncated = path, index, truncated


class CorruptFrameWarning(UserWarning):
    """Frames were left out of a read with ``on_error="skip"``."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header says: ``frames`` (may be an estimate for some containers;
    0 when unknown), ``fps``, ``height`` and ``width`` in pixels."""

    frames: int
    fps: float
    height: int
    width: int

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width


FFMPEG_LOGLEVEL = "8"
"""libav's log level for OpenCV's decoder unless the user set ``OPENCV_FFMPEG_LOGLEVEL``:
fatal messages only. A damaged file gets our error naming it; libav's own line ("moov atom
not found") would only repeat it on stderr. OpenCV reads the setting once, at its first
capture."""


def _cv2() -> ModuleType:
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOGLEVEL)
    import cv2  # deferred: `import edgeinfer.datasets` must not load OpenCV

    return cv2


def _open(path: str | os.PathLike[str]) -> tuple[Any, Path]:
    """An opened ``cv2.VideoCapture`` and the path; raises when it cannot be opened."""
    source = as_path(path)
    if not source.exists():
        raise FileNotFoundError(f"video file not found: {source}")
    if not source.is_file():
        raise VideoFileError(f"{source}: not a regular file; pass the path of a video file")
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        capture.release()
        raise VideoFileError(
            f"{source}: OpenCV cannot open this video (unknown format, or a damaged or "
            "truncated file: an .mp4 cut short loses its index); re-encode or re-download it"
        )
    return capture, source


def _info(capture: Any) -> VideoInfo:
    cv2 = _cv2()
    frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return VideoInfo(
        frames=max(int(frames), 0) if np.isfinite(frames) else 0,
        fps=float(capture.get(cv2.CAP_PROP_FPS)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
    )


def video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame count, fps and size from the file's header (nothing is decoded).

    Raises:
        FileNotFoundError: no such file.
        VideoFileError: OpenCV cannot open it.
    """
    capture, _ = _open(path)
    try:
        return _info(capture)
    finally:
        capture.release()


def _check_on_error(on_error: object) -> str:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {list(ON_ERROR)}; got {on_error!r}")
    return on_error  # type: ignore[return-value]


def _damage(source: Path, failed: list[int], total: int, *, resumed: bool, on_error: str) -> None:
    """Raise or warn about the frames ``failed`` (consecutive indices) that did not decode."""
    first, last = failed[0], failed[-1]
    what = f"frame {first}" if first == last else f"frames {first} to {last}"
    if resumed:
        message = f"{source}: {what} could not be decoded (later frames can): the file is corrupt"
    else:
        message = (
            f"{source}: the stream ends after {first} of the {total} frames its header "
            "announces: the file is truncated"
        )
    if on_error == "raise":
        raise CorruptFrameError(
            f"{message}; pass on_error='skip' to read around it", source, first, not resumed
        )
    warnings.warn(f"{message}; left out", CorruptFrameWarning, stacklevel=3)


def _decode(
    path: str | os.PathLike[str], wanted: set[int] | None, on_error: str
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, RGB frame)`` for every decodable frame (those in ``wanted`` when given).

    A failed frame is judged once the next frame decodes (corrupt) or the stream ends
    (truncated when the header announced more frames); damage to frames outside ``wanted``
    is reported too.
    """
    capture, source = _open(path)
    cv2 = _cv2()
    try:
        total, index, failed, seen = _info(capture).frames, 0, [], 0
        last_wanted = -1 if wanted is None else max(wanted, default=-1)
        while wanted is None or index <= last_wanted:
            needed = wanted is None or index in wanted
            ok = capture.grab()
            frame = capture.retrieve()[1] if ok and needed else None
            if ok and (not needed or frame is not None):
                if failed:
                    _damage(source, failed, total, resumed=True, on_error=on_error)
                    failed = []
                seen += 1
                if frame is not None:
                    yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif index < total:
                failed.append(index)  # corrupt or truncated: the next frames will tell
            else:
                break
            index += 1
        if seen == 0:
            raise VideoFileError(f"{source}: the video holds no decodable frame (0 frames)")
        if failed:
            _damage(source, failed, total, resumed=False, on_error=on_error)
    finally:
        capture.release()


def iter_video_frames(
    path: str | os.PathLike[str], *, on_error: str = "raise"
) -> Iterator[np.ndarray]:
    """Yield the frames of ``path`` one at a time, each uint8 ``(H, W, 3)`` RGB.

    Raises:
        FileNotFoundError / VideoFileError: missing, unopenable or empty file.
        CorruptFrameError: corrupt frame or truncated stream with ``on_error="raise"``.
    """
    on_error = _check_on_error(on_error)
    for _, frame in _decode(path, None, on_error):
        yield frame


def read_video(
    path: str | os.PathLike[str], *, max_frames: int | None = None, on_error: str = "raise"
) -> np.ndarray:
    """All frames (or the first ``max_frames``) of ``path``: uint8 ``(T, H, W, 3)`` RGB.

    Raises:
        FileNotFoundError / VideoFileError: missing, unopenable or empty file.
        CorruptFrameError: corrupt frame or truncated stream with ``on_error="raise"``.
        ValueError: ``max_frames < 1``.
    """
    on_error = _check_on_error(on_error)
    if max_frames is not None and (
        isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
    ):
        raise ValueError(f"max_frames must be None or an int >= 1; got {max_frames!r}")
    wanted = None if max_frames is None else set(range(max_frames))
    frames = [frame for _, frame in _decode(path, wanted, on_error)]
    return np.stack(frames)


def _check_frames(frames: object) -> np.ndarray:
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        raise TypeError(
            f"frames must be uint8 (T, H, W, 3) RGB; got {array.dtype} (for floats in [0, 1] "
            "use (frames * 255).round().astype(np.uint8))"
        )
    if array.ndim != 4 or array.shape[3] != 3 or min(array.shape[:3]) == 0:
        raise ValueError(
            f"frames must have shape (T, H, W, 3) with T, H, W >= 1; got {array.shape}"
        )
    return array


class VideoWriter:
    """Write uint8 ``(H, W, 3)`` RGB frames one at a time (``.mp4`` or ``.avi``; lossy): for
    videos too long to hold whole. A context manager; :meth:`close` finishes the file.

    Raises:
        ValueError: codec not in :data:`VIDEO_CODECS`, fps out of (0, 1000], a bad size, or
            (``write``) a frame of another size or not uint8 RGB.
        VideoFileError: OpenCV could not open a writer (bad folder or codec/container pair).
    """

    def __init__(self, path: str | os.PathLike[str], size: tuple[int, int], *,
                 fps: float = 30.0, codec: str = "mp4v") -> None:
        self.path = as_path(path)
        if codec not in VIDEO_CODECS:
            raise ValueError(f"codec must be one of {list(VIDEO_CODECS)}; got {codec!r}")
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= 1000:
            raise ValueError(f"fps must be a number in (0, 1000]; got {fps!r}")
        checked = _check_size(size)
        if checked is None:
            raise ValueError("size must be (height, width) with ints >= 1; got None")
        self.size = checked
        self._cv2 = _cv2()
        fourcc = self._cv2.VideoWriter_fourcc(*codec)
        height, width = checked
        self._writer = self._cv2.VideoWriter(str(self.path), fourcc, float(fps), (width, height))
        if not self._writer.isOpened():
            self._writer.release()
            raise VideoFileError(
                f"{self.path}: OpenCV cannot write codec {codec!r} here; check that the folder "
                "exists and use .mp4 or .avi with 'mp4v', .avi with 'MJPG'"
            )
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 ``(H, W, 3)`` RGB frame of the writer's size."""
        array = np.asarray(frame)
        if array.dtype != np.uint8 or array.shape != (*self.size, 3):
            raise ValueError(f"frame {self.frames} must be uint8 {(*self.size, 3)} RGB; got "
                             f"{array.dtype} of shape {array.shape}")  # fmt: skip
        self._writer.write(self._cv2.cvtColor(array, self._cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        self._writer.release()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(
    path: str | os.PathLike[str], frames: np.ndarray, *, fps: float = 30.0, codec: str = "mp4v"
) -> Path:
    """Write uint8 ``(T, H, W, 3)`` RGB frames to ``path`` (``.mp4`` or ``.avi``); lossy.

    Raises:
        TypeError: frames not uint8.
        ValueError: bad shape, codec not in :data:`VIDEO_CODECS`, fps <= 0.
        VideoFileError: OpenCV could not open a writer (bad folder or codec/container pair).
    """
    array = _check_frames(frames)
    with VideoWriter(path, tuple(array.shape[1:3]), fps=fps, codec=codec) as writer:
        for frame in array:
            writer.write(frame)
    return writer.path


def _check_size(size: object) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size)
    ):
        raise ValueError(f"size must be None or (height, width) with ints >= 1; got {size!r}")
    return int(size[0]), int(size[1])


def read_clip(
    path: str | os.PathLike[str],
    n_segment: int,
    *,
    size: tuple[int, int] | None = None,
    mode: str = "center",
    rng: np.random.Generator | int | None = None,
    on_error: str = "raise",
) -> np.ndarray:
    """A ``n_segment``-frame clip of ``path`` by TSN segment sampling (:func:`sample_segments`).

    Only the sampled frames are converted; the others are decoded and dropped. Videos shorter
    than ``n_segment`` repeat frames. ``size=(height, width)`` resizes (area interpolation).

    Returns:
        uint8 ``(n_segment, H, W, 3)`` RGB.

    Raises:
        as :func:`read_video` and :func:`sample_segments`; ValueError for a bad ``size``.
    """
    on_error = _check_on_error(on_error)
    target = _check_size(size)
    total = video_info(path).frames
    if total > 0:
        indices = sample_segments(total, n_segment, mode=mode, rng=rng)
        decoded = dict(_decode(path, {int(i) for i in indices}, on_error))
    if total == 0 or len(decoded) < len(set(indices.tolist())):  # header count unknown or wrong
        frames = read_video(path, on_error=on_error)
        indices = sample_segments(len(frames), n_segment, mode=mode, rng=rng)
        decoded = dict(enumerate(frames))
    clip = np.stack([decoded[int(i)] for i in indices])
    if target is None:
        return clip
    cv2 = _cv2()
    return np.stack(
        [cv2.resize(f, (target[1], target[0]), interpolation=cv2.INTER_AREA) for f in clip]
    )
