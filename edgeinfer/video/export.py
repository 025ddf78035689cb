"""Export a TSM model for deployment: ONNX (float or int8) and ExecuTorch (XNNPACK).

The streaming graph is one online step with the temporal-shift buffers as explicit inputs and
outputs: ``(frame, buffer_0, ..., buffer_{S-1}) -> (logits, new_buffer_0, ...)``, so a runtime
carries the buffers from one call to the next (:class:`~edgeinfer.video.OnnxStreamingRunner`,
:class:`~edgeinfer.video.ExecuTorchStreamingRunner`). The offline graph maps a clip
``(N*T, 3, H, W)`` to its averaged logits ``(N, num_classes)``; its shift (bidirectional or
causal) is slicing plus ``Concat``, so it exports as plain nodes.

ONNX goes through ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter): the
default dynamo exporter needs ``onnxscript``, which the pinned environment does not install.
``int8_calibration=frames`` then quantises it statically (:mod:`~edgeinfer.video.onnx_int8`).
ExecuTorch goes through ``torch.export`` and ``to_edge_transform_and_lower`` with the XNNPACK
partitioner (what XNNPACK cannot run stays on ExecuTorch's portable kernels). Shapes are static
(the ``height``/``width``/``batch`` given). ``onnx``, ``onnxruntime`` and ``executorch`` are
imported only when used.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .functional import clip_frame_logits, stream_step
from .tsm import TSMNet

__all__ = ["EXPORT_FORMATS", "export", "onnx_node_count"]

EXPORT_FORMATS: tuple[str, ...] = ("onnx", "executorch")
_EXECUTORCH_HINT = (
    "exporting to ExecuTorch needs the 'executorch' package, which is not installed. Install it "
    "with `pip install -c constraints.txt executorch` (a version that keeps the pinned torch), "
    "or export to 'onnx'"
)


class _StreamingGraph(nn.Module):
    """``(frame, *buffers) -> (logits, *new_buffers)``: one causal step, buffers explicit."""

    def __init__(self, model: TSMNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, *buffers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.model
        logits, new_buffers = stream_step(
            model.backbone, model.head, model.normalize(frame), buffers,
            fold_div=model.config.fold_div,
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
            self.model.backbone, self.model.head, self.model.normalize(clip),
            n_segment=config.n_segment,
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


_SUFFIXES = {"onnx": ".onnx", "executorch": ".pte"}


def _check_output_path(path: object, fmt: str) -> Path:
    # before tracing or lowering (minutes for ExecuTorch): a bad path fails now
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() != _SUFFIXES[fmt]:
        raise ValueError(
            f"path for a {fmt!r} export must end in {_SUFFIXES[fmt]!r} (the runners pick the "
            f"runtime by suffix); got {str(path)!r}"
        )
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ValueError(
            f"path {str(path)!r}: the folder {str(folder)!r} does not exist or is not "
            "writable; create it first"
        )
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a folder; name the file to write")
    return path


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
    int8_calibration: Sequence[torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` as an ONNX (``fmt="onnx"``) or ExecuTorch (``"executorch"``, ``.pte``) file.

    Args:
        model: an eval-mode :class:`TSMNet`.
        streaming: True: one online step, inputs ``frame (batch, 3, height, width)`` and
            ``buffer_i`` (shapes of ``model.init_buffers``), outputs ``logits (batch, K)`` and
            ``new_buffer_i``; needs ``shift`` "causal" or "none". False: the offline model,
            input ``clip (batch*T, 3, height, width)``, output ``logits (batch, K)``.
        opset: ONNX opset version.
        int8_calibration: ONNX streaming only: quantise to int8 (QDQ), with activation ranges
            calibrated on this stream of ``(3, height, width)`` frames (a few dozen frames like
            the deployment's; see :func:`~edgeinfer.video.onnx_int8.quantize_streaming_int8`).
            Lossy: measure the accuracy. None: float32.

    Returns:
        The path written.

    Raises:
        TypeError: ``model`` not a TSMNet.
        ValueError: unknown format, training mode, a bidirectional model with
            ``streaming=True``, bad sizes, a path whose suffix does not match the format
            (``.onnx`` / ``.pte``) or whose folder is missing or read-only (all checked before
            any tracing), or ``int8_calibration`` with another format or an offline export.
        ImportError: ``fmt="executorch"`` without the ``executorch`` package (install hint).
    """
    _check_export_args(
        model, fmt, streaming, {"height": height, "width": width, "batch": batch, "opset": opset}
    )
    path = _check_output_path(path, fmt)
    graph, inputs, input_names, output_names = _graph_and_inputs(
        model, streaming, batch, height, width
    )
    if int8_calibration is not None and (fmt != "onnx" or not streaming):
        raise ValueError(
            f"int8_calibration quantises a streaming ONNX export; got format {fmt!r} with "
            f"streaming={streaming}. Export with fmt='onnx', streaming=True"
        )
    if fmt == "executorch":
        _export_executorch(graph.eval(), inputs, path)
        return path
    if int8_calibration is not None:
        from .onnx_int8 import quantize_streaming_int8

        with tempfile.TemporaryDirectory(prefix="edgeinfer-export-") as folder:
            source = _export_onnx(model, graph, inputs, input_names, output_names,
                                  Path(folder) / "float.onnx", opset)
            return quantize_streaming_int8(model, source, path, int8_calibration)
    return _export_onnx(model, graph, inputs, input_names, output_names, path, opset)


def _export_onnx(
    model: TSMNet, graph: nn.Module, inputs: tuple[torch.Tensor, ...], input_names: list[str],
    output_names: list[str], path: Path, opset: int,
) -> Path:
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
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError as error:
        raise ImportError(_EXECUTORCH_HINT) from error
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the lowering passes warn about their own internals
        exported = torch.export.export(graph, inputs)
        lowered = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(lowered.to_executorch().buffer)
        partial.replace(path)  # never a half-written .pte under the final name


def onnx_node_count(path: str | os.PathLike[str]) -> dict[str, int]:
    """Node count of an ONNX file's main graph by op type, plus ``"total"``."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    counts["total"] = sum(counts.values())
    return counts
