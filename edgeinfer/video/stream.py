"""Online TSM: run a causal model on a stream, one frame at a time, shift buffers kept inside."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .tsm import TSMNet, stream_frame

if TYPE_CHECKING:
    from .runtime import ExecuTorchStreamingRunner, OnnxStreamingRunner

_RUNTIMES = {".onnx": "OnnxStreamingRunner", ".pte": "ExecuTorchStreamingRunner"}

__all__ = ["StreamingRunner"]


class StreamingRunner:
    """Feed frames of one stream to a ``shift="causal"`` (or TSN) model as they arrive.

    After frame ``t`` the logits equal ``model.forward_frames(clip)[:, t]`` for the clip of the
    frames seen since the last :meth:`reset` (the causal shift never looks ahead). Runs under
    ``torch.inference_mode``; the model must be in eval mode (batch norm on one frame would use
    that frame's statistics).

    Raises:
        TypeError: ``model`` is not a :class:`TSMNet`.
        ValueError: a bidirectional model (it needs future frames) or a model in training mode.
    """

    def __init__(self, model: TSMNet) -> None:
        if not isinstance(model, TSMNet):
            raise TypeError(
                f"model must be a TSMNet (from edgeinfer.video.create_model); "
                f"got {type(model).__name__}"
            )
        if model.config.shift == "bidirectional":
            raise ValueError(
                "StreamingRunner needs a model with shift='causal' (or 'none'); this one is "
                "'bidirectional', which needs each frame's successor. Rebuild with "
                "create_model(..., shift='causal') and load the same state_dict"
            )
        if model.training:
            raise ValueError("model is in training mode; call model.eval() before streaming")
        self.model = model
        self._buffers: tuple[torch.Tensor, ...] | None = None
        self._frame_shape: tuple[int, ...] | None = None
        self.frames_seen = 0

    @staticmethod
    def from_export(
        path: str | os.PathLike[str], *, num_threads: int = 1
    ) -> OnnxStreamingRunner | ExecuTorchStreamingRunner:
        """The runner of a file written by ``export(model, fmt, path, streaming=True)``, with
        the same ``step`` / ``reset`` / ``frames_seen`` as this class: ``.onnx`` (float or
        int8) runs in ONNX Runtime (:class:`~edgeinfer.video.OnnxStreamingRunner`), ``.pte``
        in ExecuTorch (:class:`~edgeinfer.video.ExecuTorchStreamingRunner`).

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: another suffix, or the file is not a streaming export.
            ImportError: the runtime is not installed (with the install command).
        """
        from . import runtime

        path = Path(path)
        if path.suffix not in _RUNTIMES:
            raise ValueError(
                f"path must name an exported streaming model ({', '.join(_RUNTIMES)}); got "
                f"{str(path)!r}"
            )
        if not path.is_file():
            raise FileNotFoundError(f"no exported model at {str(path)!r}")
        return getattr(runtime, _RUNTIMES[path.suffix])(path, num_threads=num_threads)

    def reset(self) -> None:
        """Forget the stream: the next frame is treated as frame 0 and may have any size."""
        self._buffers = None
        self._frame_shape = None
        self.frames_seen = 0

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of frame ``(3, H, W)`` (B = 1) or ``(B, 3, H, W)``.

        A frame of another floating dtype is converted to the model's. The runner changes only
        when the step succeeds: after an error the stream goes on as if the call never happened.

        Raises:
            TypeError: ``frame`` not a floating tensor.
            ValueError: wrong rank/channels, NaN/inf values, or a size differing from the
                stream's first frame (call :meth:`reset` to start a new stream at another size).
        """
        if self.model.training:
            raise ValueError("model is in training mode; call model.eval() before streaming")
        frame = stream_frame(self.model, frame, self._frame_shape)
        buffers = self._buffers
        if buffers is None:
            batch, _, height, width = frame.shape
            buffers = self.model.init_buffers(
                batch, height, width, dtype=frame.dtype, device=frame.device
            )
        # the state changes only once the step has returned: a step that raises leaves the
        # runner as it was, and the next frame continues the stream undisturbed
        with torch.inference_mode():
            logits, buffers = self.model.step(frame, buffers)
        self._buffers, self._frame_shape = buffers, tuple(frame.shape)
        self.frames_seen += 1
        return logits
