"""Benchmark cases of the exported streaming model: eager torch vs each runtime, per frame.

- ``onnx-stream-224``: MobileNetV2-TSM (width 1.0, seeded weights) streaming step at 224x224,
  eager torch vs ONNX Runtime (float32); quality = max abs logit difference over a short stream.
- ``onnx-int8-stream-224``: the same against the int8 (static QDQ) export, calibrated on 16
  frames of another static-camera stream; quality = error norm relative to the logits' norm and
  top-1 agreement with eager over 8 frames (seeded weights: logits are near ties, so agreement
  is a harsh test here).
- ``onnx-int8-motion-32``: the shipped motion TSM at its 32x32 input, eager vs ONNX Runtime
  int8 (calibrated on 24 training-seed clips); quality = held-out clip accuracy (20 clips per
  class, mean of the streamed per-frame logits) of eager float32, ONNX Runtime float32 and
  int8.
- ``executorch-stream-224``: the 224x224 step against ExecuTorch lowered to XNNPACK (float32).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

__all__ = ["export_cases"]

_SIDE = 224


_FOLDERS: list[tempfile.TemporaryDirectory] = []  # exported files live until the process ends


def _folder() -> Path:
    """A fresh folder for exported files, removed when the benchmark process exits."""
    _FOLDERS.append(tempfile.TemporaryDirectory(prefix="edgeinfer-video-bench-"))
    return Path(_FOLDERS[-1].name)


def _frame(seed: int = 0):
    from .bench import _frame as frame  # shared with the other video cases (lazy: no cycle)

    return frame(seed, _SIDE)


def _eager_step(state: dict[str, Any]):
    logits, state["buffers"] = state["model"].step(state["frame"], state["buffers"])
    return logits


def _runtime_step(state: dict[str, Any]):
    return state["runner"].step(state["frame"])


def _setup_224(kind: str) -> dict[str, Any]:
    import torch

    from .bench import _mobilenet
    from .export import export
    from .runtime import ExecuTorchStreamingRunner, OnnxStreamingRunner

    model, folder = _mobilenet("causal"), _folder()
    threads = torch.get_num_threads()
    if kind == "executorch":
        path = export(model, "executorch", folder / "tsm.pte", height=_SIDE, width=_SIDE)
        runner: Any = ExecuTorchStreamingRunner(path, num_threads=threads)
    else:
        calibration = None
        if kind == "int8":
            from ..datasets.static_stream import generate_static_stream

            frames, _ = generate_static_stream(7, frames=16, size=(_SIDE, _SIDE), event_rate=0.2)
            calibration = [torch.from_numpy(f).permute(2, 0, 1).float().div(255.0)
                           for f in frames]
        path = export(model, "onnx", folder / f"tsm_{kind}.onnx", height=_SIDE, width=_SIDE,
                      int8_calibration=calibration)
        runner = OnnxStreamingRunner(path, num_threads=threads)
    return {"model": model, "frame": _frame(), "runner": runner,
            "buffers": model.init_buffers(1, _SIDE, _SIDE)}


def _stream_pair(state: dict[str, Any], frames: int):
    import torch

    from .stream import StreamingRunner

    eager, runner = StreamingRunner(state["model"]), state["runner"]
    runner.reset()
    pairs = [(eager.step(f), runner.step(f)) for f in (_frame(seed) for seed in range(frames))]
    runner.reset()
    return torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs])


def _quality_float(_, __, state) -> dict[str, float]:
    want, got = _stream_pair(state, 4)  # a short stream: the buffers must carry over
    return {"max abs diff": float((want - got).abs().max())}


def _quality_int8(_, __, state) -> dict[str, float]:
    want, got = _stream_pair(state, 8)
    return {"rel err": float((want - got).norm() / want.norm()),
            "top-1 agree": float((want.argmax(1) == got.argmax(1)).float().mean())}


def _setup_motion() -> dict[str, Any]:
    import torch

    from ..datasets.video import make_motion_dataset
    from .export import export
    from .pretrained import load_pretrained
    from .runtime import OnnxStreamingRunner
    from .train import clips_to_tensor

    model, info = load_pretrained("tsm", shift="causal")
    side, folder = info.input.size[0], _folder()
    train_seed = int(info.metadata["train_config"]["train_seed"])
    calibration, _ = make_motion_dataset(3, train_seed, size=side)  # 27 clips, not held out
    frames = list(clips_to_tensor(calibration)[:24 * model.config.n_segment])
    threads = torch.get_num_threads()
    paths = {kind: export(model, "onnx", folder / f"motion_{kind}.onnx", height=side, width=side,
                          int8_calibration=frames if kind == "int8" else None)
             for kind in ("float", "int8")}
    runners = {kind: OnnxStreamingRunner(path, num_threads=threads)
               for kind, path in paths.items()}
    clips, labels = make_motion_dataset(20, int(info.metadata["eval_seed"]), size=side)
    return {"model": model, "frame": clips_to_tensor(clips[:1])[:1], "runner": runners["int8"],
            "float_runner": runners["float"], "buffers": model.init_buffers(1, side, side),
            "clips": clips_to_tensor(clips).reshape(len(clips), -1, 3, side, side),
            "labels": labels}


def _clip_accuracy(runner, clips, labels) -> float:
    import numpy as np
    import torch

    predictions = []
    for clip in clips:
        runner.reset()
        logits = torch.stack([runner.step(frame[None])[0] for frame in clip]).mean(0)
        predictions.append(int(logits.argmax()))
    runner.reset()
    return float((np.array(predictions) == labels).mean())


def _quality_motion(_, __, state) -> dict[str, float]:
    from .stream import StreamingRunner

    clips, labels = state["clips"], state["labels"]
    return {"eager acc": _clip_accuracy(StreamingRunner(state["model"]), clips, labels),
            "ORT fp32 acc": _clip_accuracy(state["float_runner"], clips, labels),
            "ORT int8 acc": _clip_accuracy(state["runner"], clips, labels)}


def export_cases() -> list:
    """The export/runtime cases of the ``video`` benchmark (see the module docstring)."""
    from ..bench import Case

    onnx = ("onnx", "onnxruntime")
    return [
        Case("onnx-stream-224", lambda: _setup_224("float"), _eager_step, _runtime_step,
             _quality_float, quick=False, count_macs=False, requires=onnx),
        Case("onnx-int8-stream-224", lambda: _setup_224("int8"), _eager_step, _runtime_step,
             _quality_int8, quick=False, count_macs=False, requires=onnx),
        Case("onnx-int8-motion-32", _setup_motion, _eager_step, _runtime_step, _quality_motion,
             quick=False, count_macs=False, requires=onnx),
        Case("executorch-stream-224", lambda: _setup_224("executorch"), _eager_step,
             _runtime_step, _quality_float, quick=False, count_macs=False,
             requires=("executorch",)),
    ]
