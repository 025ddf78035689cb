"""Static int8 quantisation of a streaming ONNX export (ONNX Runtime, QDQ format).

Convolutions dominate a TSM step (~95 % of ONNX Runtime's time), and ONNX Runtime's dynamic
quantisation only covers MatMul/Gemm well, so the streaming graph is quantised *statically*:
per-channel int8 weights, uint8 activations with ranges calibrated by running the float graph's
inputs over a calibration stream. The inputs of a streaming graph include the shift buffers, so
the calibration feeds are ``(frame_t, buffers after frames 0..t-1)`` taken from the torch model
streaming those frames. ``reduce_range`` keeps weights to 7 bits, which avoids the saturation of
the 8-bit multiply-add on CPUs without VNNI (AVX2 only); it is the default for that reason.

Lossy: quantify the loss on held-out data for the model at hand (the video benchmark reports
the shipped motion classifier's accuracy in float and int8).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from .tsm import TSMNet, check_frames

__all__ = ["calibration_feeds", "quantize_streaming_int8"]


def calibration_feeds(
    model: TSMNet, frames: Sequence[torch.Tensor]
) -> list[dict[str, object]]:
    """ONNX feeds ``{"frame": ..., "buffer_i": ...}`` of a stream of calibration frames.

    Args:
        model: the eval-mode causal model that was exported.
        frames: consecutive frames of one stream, each ``(3, H, W)`` or ``(1, 3, H, W)``.

    Raises:
        ValueError: no frames, or frames of another shape than the first.
    """
    if len(frames) == 0:
        raise ValueError("calibration frames must hold at least one (3, H, W) frame; got none")
    feeds: list[dict[str, object]] = []
    buffers: tuple[torch.Tensor, ...] | None = None
    with torch.inference_mode():
        for index, frame in enumerate(frames):
            if isinstance(frame, torch.Tensor) and frame.dim() == 3:
                frame = frame.unsqueeze(0)
            check_frames(frame, f"calibration frame {index}", "(3, H, W) or (1, 3, H, W)")
            if buffers is None:
                buffers = model.init_buffers(frame.shape[0], frame.shape[2], frame.shape[3])
                shape = frame.shape
            elif frame.shape != shape:
                raise ValueError(
                    f"calibration frames must share one shape; frame 0 is {tuple(shape)}, "
                    f"frame {index} is {tuple(frame.shape)}"
                )
            frame = frame.to(torch.float32).contiguous()
            feed: dict[str, object] = {"frame": frame.numpy()}
            feed.update((f"buffer_{i}", buffer.numpy()) for i, buffer in enumerate(buffers))
            feeds.append(feed)
            _, buffers = model.step(frame, buffers)
    return feeds


class _Feeds:
    """The ``CalibrationDataReader`` protocol over a list of feeds (one pass)."""

    def __init__(self, feeds: list[dict[str, object]]) -> None:
        self._items: Iterator[dict[str, object]] = iter(feeds)

    def get_next(self) -> dict[str, object] | None:
        return next(self._items, None)


def quantize_streaming_int8(
    model: TSMNet, source: str | os.PathLike[str], target: str | os.PathLike[str],
    frames: Sequence[torch.Tensor], *, reduce_range: bool = True,
) -> Path:
    """Write an int8 (QDQ) copy of the float streaming ONNX file ``source`` to ``target``.

    Args:
        model: the model ``source`` was exported from (it computes the calibration buffers).
        frames: the calibration stream (see :func:`calibration_feeds`), of the exported size;
            a few dozen frames like those the model will see.
        reduce_range: 7-bit weights (see the module docstring).

    Returns:
        ``target`` as a Path.

    Raises:
        ImportError: ``onnxruntime`` (with its quantization tools) not installed.
        ValueError: bad calibration frames.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = calibration_feeds(model, frames)
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix="edgeinfer-int8-") as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(
            str(prepared), str(target), _Feeds(feeds), quant_format=QuantFormat.QDQ,
            per_channel=True, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return target
