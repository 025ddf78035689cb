"""Run an exported streaming model one frame at a time: ONNX Runtime and ExecuTorch.

Both runners mirror :class:`~edgeinfer.video.StreamingRunner` (``step``/``reset``/
``frames_seen``) on a file written by ``export(model, fmt, path, streaming=True)``: inputs
``(frame, buffer_0, ...)``, outputs ``(logits, new_buffer_0, ...)``; the runner carries the
buffers from one call to the next. ``onnxruntime`` / ``executorch`` are imported when a runner
is built, never with this package.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import torch

from .tsm import check_frames

__all__ = ["ExecuTorchStreamingRunner", "OnnxStreamingRunner"]

_EXECUTORCH_RUNTIME_HINT = (
    "running an ExecuTorch file needs the 'executorch' package, which is not installed. "
    "Install it with `pip install -c constraints.txt executorch` (it must keep the pinned "
    "torch), or export to 'onnx' and use OnnxStreamingRunner"
)


def _check_pte(path: Path) -> None:
    """Refuse a file that is not an ExecuTorch program before the native loader sees it.

    The loader verifies the flatbuffer, but on some bad bytes its error message is not UTF-8
    and the binding aborts the interpreter (SIGABRT) while raising it; so the flatbuffer
    identifier and the extended header (program and segment sizes) are checked here.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no ExecuTorch program at {str(path)!r}")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(40)
    if len(head) < 8 or head[4:6] != b"ET" or not head[6:8].isdigit():
        raise ValueError(
            f"{path}: not an ExecuTorch program (a .pte file carries the flatbuffer identifier "
            f"'ETnn' at byte 4; found {head[4:8]!r}); the file is corrupt or of another format"
        )
    if head[8:12] == b"eh00" and len(head) >= 40:
        length, program, segment_base, segment_size = struct.unpack_from("<IQQQ", head, 12)
        end = max(program, segment_base + segment_size if segment_size else 0)
        if length < 24 or end > size:
            raise ValueError(
                f"{path}: ExecuTorch program is truncated or corrupt: its header promises "
                f"{end} bytes (program {program}, segments {segment_size} from "
                f"{segment_base}), the file holds {size}"
            )


def _load_pte(runtime: object, path: Path) -> tuple[object, object]:
    # (program, forward method) of a file _check_pte accepted; the loader's RuntimeError
    # names only an error code
    try:
        program = runtime.load_program(path)
        return program, program.load_method("forward")
    except RuntimeError as error:
        raise ValueError(
            f"{path}: ExecuTorch could not load this program ({error}); the file is corrupt, "
            "truncated or written by an incompatible ExecuTorch version. Export it again with "
            "export(model, 'executorch', path)"
        ) from error


def _check_threads(num_threads: object) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be an int >= 1; got {num_threads!r}")
    return num_threads


def _batched(frame: object, expected: tuple[int, ...]) -> torch.Tensor:
    # (3, H, W) or (B, 3, H, W) float -> contiguous float32 of the exported frame shape
    if isinstance(frame, torch.Tensor) and frame.dim() == 3:
        frame = frame.unsqueeze(0)
    frame = check_frames(frame, "frame", "(3, H, W) or (B, 3, H, W)")
    if tuple(frame.shape) != expected:
        raise ValueError(
            f"frame must have the exported shape {expected}; got {tuple(frame.shape)}. "
            "Re-export with export(..., height=, width=, batch=)"
        )
    return frame.detach().to(torch.float32).contiguous()


class OnnxStreamingRunner:
    """Run a streaming ONNX file (from ``export(..., streaming=True)``, float or int8) one frame
    at a time in ONNX Runtime, carrying the shift buffers between calls.

    Args:
        path: the ``.onnx`` file.
        num_threads: ONNX Runtime intra-op threads (inter-op is 1).

    Raises:
        ImportError: ``onnxruntime`` not installed.
        FileNotFoundError: no file at ``path``.
        ValueError: ``num_threads < 1``, a file ONNX Runtime cannot load (corrupt, truncated),
            or one that is not a streaming export (no ``frame`` input).
    """

    def __init__(self, path: str | os.PathLike[str], *, num_threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _check_threads(num_threads)
        options.inter_op_num_threads = 1
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX model at {str(path)!r}")
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own classes (InvalidProtobuf, ...)
            raise ValueError(
                f"{path}: ONNX Runtime could not load this model ({type(error).__name__}: "
                f"{str(error)[:300]}); the file is corrupt, truncated or not an ONNX model. "
                "Export it again with export(model, 'onnx', path)"
            ) from error
        inputs = self.session.get_inputs()
        if not inputs or inputs[0].name != "frame":
            names = [item.name for item in inputs]
            raise ValueError(
                f"{path} is not a streaming export: inputs {names}, expected 'frame' then the "
                "buffers. Write it with export(model, 'onnx', path, streaming=True)"
            )
        self.frame_shape = tuple(inputs[0].shape)
        self._buffer_specs = [(item.name, tuple(item.shape)) for item in inputs[1:]]
        self.reset()

    def reset(self) -> None:
        """Zero the buffers: the next frame is frame 0 of a new stream."""
        self._buffers = [np.zeros(shape, dtype=np.float32) for _, shape in self._buffer_specs]
        self.frames_seen = 0

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of ``frame`` ``(3, H, W)`` or ``(B, 3, H, W)``, float32.

        Raises:
            TypeError / ValueError: not a floating tensor of the exported frame shape.
        """
        feeds = {"frame": _batched(frame, self.frame_shape).numpy()}
        feeds.update(
            (name, buffer) for (name, _), buffer in zip(self._buffer_specs, self._buffers,
                                                        strict=True)
        )
        logits, *self._buffers = self.session.run(None, feeds)
        self.frames_seen += 1
        return torch.from_numpy(logits)


class ExecuTorchStreamingRunner:
    """Run a streaming ExecuTorch file (``export(model, "executorch", path)``, XNNPACK-lowered)
    one frame at a time in the ExecuTorch runtime, carrying the shift buffers between calls.

    ExecuTorch's Python runtime has one XNNPACK thread pool per process and no per-program
    setting, and the pool cannot be swapped under a loaded XNNPACK program (the process then
    crashes), so ``num_threads`` resizes it only when the runner is built, before its program
    loads, and only if it differs: build every ExecuTorch runner of a process with the same
    ``num_threads``, before running any.

    Args:
        path: the ``.pte`` file.
        num_threads: XNNPACK threads.

    Raises:
        ImportError: ``executorch`` not installed (with the install command).
        FileNotFoundError: no file at ``path``.
        ValueError: ``num_threads < 1``, a file that is not a loadable ExecuTorch program
            (checked before the native loader runs: random bytes, a truncated or corrupt
            file), or one that is not a streaming export (its method
            does not map ``(frame, *buffers)`` to ``(logits, *new_buffers)``).
    """

    def __init__(self, path: str | os.PathLike[str], *, num_threads: int = 1) -> None:
        try:
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
        except ImportError as error:
            raise ImportError(_EXECUTORCH_RUNTIME_HINT) from error
        self.num_threads = _check_threads(num_threads)
        path = Path(path)
        _check_pte(path)
        if portable_lib._threadpool_get_thread_count() != self.num_threads:
            portable_lib._unsafe_reset_threadpool(self.num_threads)
        program, method = _load_pte(Runtime.get(), path)
        meta = program.metadata("forward")
        shapes = [tuple(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]
        if len(shapes) < 2 or meta.num_outputs() != len(shapes) or len(shapes[0]) != 4:
            raise ValueError(
                f"{path} is not a streaming export: its forward takes {len(shapes)} inputs "
                f"{shapes} and returns {meta.num_outputs()}; expected (frame, *buffers) -> "
                "(logits, *new_buffers). Write it with export(model, 'executorch', path, "
                "streaming=True) from a model with shift='causal'"
            )
        self._program = program  # the method runs out of the program's memory: keep it
        self._method = method
        self.frame_shape, self._buffer_shapes = shapes[0], shapes[1:]
        self.reset()

    def reset(self) -> None:
        """Zero the buffers: the next frame is frame 0 of a new stream."""
        self._buffers = [torch.zeros(shape) for shape in self._buffer_shapes]
        self.frames_seen = 0

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of ``frame`` ``(3, H, W)`` or ``(B, 3, H, W)``, float32.

        Raises:
            TypeError / ValueError: not a floating tensor of the exported frame shape.
        """
        batched = _batched(frame, self.frame_shape)
        outputs = self._method.execute([batched, *self._buffers])
        # copies: the runtime may reuse its output memory on the next call
        logits, *self._buffers = (output.clone() for output in outputs)
        self.frames_seen += 1
        return logits
