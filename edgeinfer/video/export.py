"""Export a TSM model for deployment (ONNX, ExecuTorch) and run an exported stream in ONNX Runtime.

The streaming graph is one online step with the temporal-shift buffers as explicit inputs and
outputs: ``(frame, buffer_0, ..., buffer_{S-1}) -> (logits, new_buffer_0, ...)``, so a runtime
carries the buffers from one call to the next (:class:`OnnxStreamingRunner` does). The offline
graph maps a clip ``(N*T, 3, H, W)`` to its averaged logits ``(N, num_classes)``; its shift
(bidirectional or causal) is slicing plus ``Concat``, so it exports as plain nodes.

ONNX goes through ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter): the
default dynamo exporter needs ``onnxscript``, which the pinned environment does not install.
Shapes are static (the ``height``/``width``/``batch`` given). ``onnx``, ``onnxruntime`` and
``executorch`` are imported only when used.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .functional import clip_frame_logits, stream_step
from .tsm import TSMNet, check_frames

__all__ = ["EXPORT_FORMATS", "OnnxStreamingRunner", "export", "onnx_node_count"]

EXPORT_FORMATS: tuple[str, ...] = ("onnx", "executorch")
_EXECUTORCH_HINT = (
    "exporting to ExecuTorch needs the 'executorch' package, which is not installed. Install it "
    "with `pip install executorch` (a version matching your torch), or export to 'onnx'"
)


class _StreamingGraph(nn.Module):
    """``(frame, *buffers) -> (logits, *new_buffers)``: one causal step, buffers explicit."""

    def __init__(self, model: TSMNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, *buffers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.model
        logits, new_buffers = stream_step(
            model.backbone, model.head, frame, buffers, fold_div=model.config.fold_div
        )
        return (logits, *new_buffers)


class _OfflineGraph(nn.Module):
    """``clip (N*T, 3, H, W) -> logits (N, num_classes)``, per-frame logits averaged."""

    def __init__(self, model: TSMNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        config = self.model.config
        return clip_frame_logits(
            self.model.backbone, self.model.head, clip, n_segment=config.n_segment,
            shift=config.shift, fold_div=config.fold_div,
        ).mean(dim=1)


def _check_export_args(model: object, fmt: object, streaming: bool, sizes: dict) -> None:
    if not isinstance(model, TSMNet):
        raise TypeError(f"model must be a TSMNet (from create_model); got {type(model).__name__}")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}; got {fmt!r}")
    if model.training:
        raise ValueError("model is in training mode; call model.eval() before export")
    if streaming and model.config.shift == "bidirectional":
        raise ValueError(
            "streaming=True needs a model with shift='causal' (or 'none'); this one is "
            "'bidirectional'. Export it with streaming=False, or rebuild it with "
            "create_model(..., shift='causal') and load the same state_dict"
        )
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")


def _graph_and_inputs(
    model: TSMNet, streaming: bool, batch: int, height: int, width: int
) -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str], list[str]]:
    if streaming:
        buffers = model.init_buffers(batch, height, width)
        frame = torch.zeros(batch, 3, height, width)
        names = [f"buffer_{i}" for i in range(len(buffers))]
        return (_StreamingGraph(model), (frame, *buffers), ["frame", *names],
                ["logits", *(f"new_{name}" for name in names)])
    clip = torch.zeros(batch * model.config.n_segment, 3, height, width)
    return _OfflineGraph(model), (clip,), ["clip"], ["logits"]


def export(
    model: TSMNet, fmt: str, path: str | os.PathLike[str], *, streaming: bool = True,
    height: int = 224, width: int = 224, batch: int = 1, opset: int = 17,
) -> Path:
    """Write ``model`` as an ONNX (``fmt="onnx"``) or ExecuTorch (``"executorch"``, ``.pte``) file.

    Args:
        model: an eval-mode :class:`TSMNet`.
        streaming: True: one online step, inputs ``frame (batch, 3, height, width)`` and
            ``buffer_i`` (shapes of ``model.init_buffers``), outputs ``logits (batch, K)`` and
            ``new_buffer_i``; needs ``shift`` "causal" or "none". False: the offline model,
            input ``clip (batch*T, 3, height, width)``, output ``logits (batch, K)``.
        opset: ONNX opset version.

    Returns:
        The path written.

    Raises:
        TypeError: ``model`` not a TSMNet.
        ValueError: unknown format, training mode, a bidirectional model with
            ``streaming=True``, or bad sizes.
        ImportError: ``fmt="executorch"`` without the ``executorch`` package (install hint).
    """
    _check_export_args(
        model, fmt, streaming, {"height": height, "width": width, "batch": batch, "opset": opset}
    )
    graph, inputs, input_names, output_names = _graph_and_inputs(
        model, streaming, batch, height, width
    )
    path = Path(path)
    if fmt == "executorch":
        _export_executorch(graph.eval(), inputs, path)
        return path
    was_training = model.training
    graph.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript exporter announces its own deprecation on every call, and the
            # shape checks of shift_step trace as constants (shapes are static here)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*will be removed.*")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                graph, inputs, str(path), dynamo=False, input_names=input_names,
                output_names=output_names, opset_version=opset, do_constant_folding=True,
            )
    finally:
        model.train(was_training)
    return path


def _export_executorch(graph: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> None:
    try:
        from executorch.exir import to_edge
    except ImportError as error:
        raise ImportError(_EXECUTORCH_HINT) from error
    program = to_edge(torch.export.export(graph, inputs)).to_executorch()
    path.write_bytes(program.buffer)


def onnx_node_count(path: str | os.PathLike[str]) -> dict[str, int]:
    """Node count of an ONNX file's main graph by op type, plus ``"total"``."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    counts["total"] = sum(counts.values())
    return counts


class OnnxStreamingRunner:
    """Run a streaming ONNX file (from ``export(..., streaming=True)``) one frame at a time in
    ONNX Runtime, carrying the shift buffers between calls: the ONNX counterpart of
    :class:`~edgeinfer.video.StreamingRunner`.

    Args:
        path: the ``.onnx`` file.
        num_threads: ONNX Runtime intra-op threads (inter-op is 1).

    Raises:
        ImportError: ``onnxruntime`` not installed.
        ValueError: the file is not a streaming export (no ``frame`` input).
    """

    def __init__(self, path: str | os.PathLike[str], *, num_threads: int = 1) -> None:
        import onnxruntime

        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be an int >= 1; got {num_threads!r}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
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
        import numpy as np

        self._buffers = [np.zeros(shape, dtype=np.float32) for _, shape in self._buffer_specs]
        self.frames_seen = 0

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of ``frame`` ``(3, H, W)`` or ``(B, 3, H, W)``, float32.

        Raises:
            TypeError / ValueError: not a floating tensor of the exported frame shape.
        """
        if isinstance(frame, torch.Tensor) and frame.dim() == 3:
            frame = frame.unsqueeze(0)
        check_frames(frame, "frame", "(3, H, W) or (B, 3, H, W)")
        if tuple(frame.shape) != self.frame_shape:
            raise ValueError(
                f"frame must have the exported shape {self.frame_shape}; got "
                f"{tuple(frame.shape)}. Re-export with export(..., height=, width=, batch=)"
            )
        feeds = {"frame": frame.detach().to(torch.float32).contiguous().numpy()}
        feeds.update(
            (name, buffer) for (name, _), buffer in zip(self._buffer_specs, self._buffers,
                                                        strict=True)
        )
        logits, *self._buffers = self.session.run(None, feeds)
        self.frames_seen += 1
        return torch.from_numpy(logits)
