"""Benchmark of the video engine: temporal shift at zero cost, streaming, export, skipping.

Cases (baseline vs candidate, same process, same input):

- ``tsn-vs-tsm``: the shipped TSN and TSM motion checkpoints (identical architecture) on the
  held-out motion clips; quality = both accuracies and whether their MACs are equal. A speed-up
  of ~1.0 is the point: the shift adds accuracy, not latency.
- ``stream-shift``: one streaming step at 224x224 of MobileNetV2 (width 1.0) without shift
  (TSN) vs with the causal shift buffers (TSM, swapped into the block inputs in place). Both
  sides run the very same modules (the TSN model is given the TSM's backbone and head), so
  only the shift differs, not where the weights sit in memory; quality = the logit change
  relative to the logits (the shift changes what the model computes; not an error).
- ``onnx-stream-224`` / ``onnx-int8-stream-224`` / ``executorch-stream-224``: that TSM step,
  eager torch vs the streaming export in ONNX Runtime float32 / ONNX Runtime int8 (static QDQ,
  calibrated on 16 frames of another stream) / ExecuTorch with XNNPACK; quality = logit error
  over a short stream (int8: error norm relative to the logits' norm, top-1 agreement; the
  seeded logits are near ties). ``onnx-int8-motion-32``: the shipped motion TSM at 32x32,
  eager vs ONNX Runtime int8; quality = held-out clip accuracy of eager, ORT float32 and int8.
- ``gate``: static-camera streams (``generate_static_stream``, 120x160, seeds 0..n-1, objects
  arriving at ``rate`` per frame) through the shipped TSM at its training input size, every
  frame vs :class:`~edgeinfer.video.GatedRunner` (default gate: settles for the model's 8
  shift sites after each change); quality = fraction of per-frame predictions equal to the
  every-frame ones, fraction of frames skipped, and the fraction of frames in which something
  moved (ground truth: those frames must run, so the speed-up is at most about
  ``1 / (events + settling)``). ``min_margin`` is twice the logit jitter measured on a
  separate still stream (seed 1000): near-tie outputs are not reused.
- ``gate-cost-720p``: the price of the decision alone, per 1280x720 frame of a static-camera
  stream: the usual change test (the whole frame to grey, area-resized to the gate's 18x32
  thumbnail with OpenCV, mean absolute difference to the last one) vs
  :meth:`~edgeinfer.video.FrameGate.decide` (a strided 18x32 sample, integer grey); quality =
  the pixels each reads.
- ``gate-delta-stream-224``: a noise-free 224x224 static-camera stream (120 frames, objects
  arriving at 0.01 per frame) through the seeded MobileNetV2 TSM, every frame with
  :class:`~edgeinfer.video.StreamingRunner` vs ``GatedRunner(DeltaRunner(model))`` (skip quiet
  frames, update only the changes on the others, threshold 0); quality = the largest logit
  difference over the stream relative to the largest logit (reused outputs included), the
  fraction of frames skipped and the fraction with a moving object.
- ``delta-prefix-<p>%``: a blob covering ``p`` % of a 224x224 frame changes (every other call:
  the frames alternate); the early stages the delta path covers (MobileNetV2 stem + blocks 0-1,
  six convs, 112x112 and 56x56), computed densely as the streaming runner does vs
  :meth:`~edgeinfer.video.DeltaRunner.step_prefix` (exact threshold 0, default ``"box"``
  method); ``-folded`` rows take the same convs with batch norm folded in as the dense side (the
  fastest dense form), ``-im2col`` rows the kernel-map row method as the delta side; quality =
  the prefix output's max abs error relative to its largest value, and the fraction of pixels
  that changed.
- ``delta-<p>%``: the same frames through the whole streaming step, dense vs
  :class:`~edgeinfer.video.DeltaRunner`; quality = max abs logit error and that error relative
  to the largest logit (the seeded model's logits are small).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..bench import Benchmark, Case, PlotSpec
from .bench_export import export_cases

__all__ = ["BENCHMARKS", "blob_change", "make_cases"]

_SIDE = 224
_DELTA_FRACTIONS = (0.01, 0.05, 0.10, 0.25)


@functools.lru_cache(maxsize=4)
def _pretrained(kind: str, shift: str | None = None):
    from .pretrained import load_pretrained

    return load_pretrained(kind, shift=shift)


@functools.lru_cache(maxsize=4)
def _mobilenet(shift: str):
    """Width-1.0 MobileNetV2 TSM (seeded weights; shift only changes the wiring)."""
    import torch

    from .registry import create_model

    torch.manual_seed(0)
    return create_model("tsm_mobilenetv2", num_classes=9, shift=shift).eval()


def _frame(seed: int = 0, side: int = _SIDE):
    import torch

    from ..datasets.static_stream import generate_static_stream

    frames, _ = generate_static_stream(seed, frames=1, size=(side, side))
    return torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float().div(255.0)


def blob_change(frame, fraction: float, seed: int = 0):
    """A copy of ``frame (1, 3, H, W)`` with a disk covering ``fraction`` of its pixels set to
    new random colours (a moving object's footprint)."""
    import torch

    _, _, height, width = frame.shape
    rng = np.random.default_rng(seed)
    radius = float(np.sqrt(fraction * height * width / np.pi))
    cy, cx = rng.uniform(radius, height - radius), rng.uniform(radius, width - radius)
    ys, xs = np.mgrid[:height, :width]
    mask = torch.from_numpy((ys + 0.5 - cy) ** 2 + (xs + 0.5 - cx) ** 2 <= radius**2)
    changed = frame.clone()
    colours = torch.from_numpy(rng.random((3, height, width), dtype=np.float32))
    changed[0][:, mask] = colours[:, mask]
    return changed


# tsn-vs-tsm ---------------------------------------------------------------------------------


def _setup_offline(per_class: int) -> dict[str, Any]:
    from ..datasets.video import make_motion_dataset
    from .train import clips_to_tensor

    tsn, info = _pretrained("tsn")
    tsm, _ = _pretrained("tsm")
    seed = int(info.metadata.get("eval_seed", 0))
    clips, labels = make_motion_dataset(per_class, seed, size=info.input.size[0])
    return {"tsn": tsn, "tsm": tsm, "clip": clips_to_tensor(clips), "labels": labels}


def _quality_offline(tsn_logits, tsm_logits, state) -> dict[str, float]:
    from ..bench import count_macs

    labels = state["labels"]
    macs = [count_macs(state[key], state["clip"][:8]) for key in ("tsn", "tsm")]
    return {
        "TSN acc": float((tsn_logits.argmax(1).numpy() == labels).mean()),
        "TSM acc": float((tsm_logits.argmax(1).numpy() == labels).mean()),
        "MACs equal": float(macs[0] == macs[1] and macs[0] is not None),
    }


# streaming step: shift overhead and ONNX ----------------------------------------------------


def _stream_state(model) -> dict[str, Any]:
    frame = _frame()
    return {"model": model, "frame": frame, "buffers": model.init_buffers(1, _SIDE, _SIDE)}


def _step(model_key: str, buffers_key: str):
    def run(state: dict[str, Any]):
        logits, state[buffers_key] = state[model_key].step(state["frame"], state[buffers_key])
        return logits
    return run


def _setup_shift() -> dict[str, Any]:
    tsm, tsn = _mobilenet("causal"), _mobilenet("none")
    tsn.backbone, tsn.head = tsm.backbone, tsm.head  # one set of modules: only the shift differs
    state = _stream_state(tsm)
    state.update(tsn=tsn, tsn_buffers=())
    return state


# frame gate ---------------------------------------------------------------------------------


def _setup_gate(streams: int, frames: int, rate: float) -> dict[str, Any]:
    import torch

    from ..datasets.static_stream import generate_static_stream
    from .skip import GatedRunner, frame_to_tensor, logit_jitter
    from .stream import StreamingRunner

    model, info = _pretrained("tsm", "causal")
    side = info.input.size[0]  # the size it was trained at (larger: out of distribution)

    def preprocess(frame: np.ndarray):
        tensor = frame_to_tensor(frame)
        return torch.nn.functional.interpolate(tensor, size=(side, side), mode="area")

    pairs = [generate_static_stream(seed, frames=frames, size=(120, 160), event_rate=rate)
             for seed in range(streams)]
    runner = StreamingRunner(model)
    still, _ = generate_static_stream(1000, frames=64, size=(120, 160), event_rate=0.0)
    margin = 2.0 * logit_jitter(runner, still, preprocess)  # calibrated off the test streams
    gated = GatedRunner(StreamingRunner(model), preprocess=preprocess, min_margin=margin)
    return {"streams": [stream for stream, _ in pairs], "runner": runner, "gated": gated,
            "preprocess": preprocess, "events": np.concatenate([ev for _, ev in pairs])}


def _every_frame(state: dict[str, Any]) -> np.ndarray:
    runner, preprocess, out = state["runner"], state["preprocess"], []
    for stream in state["streams"]:
        runner.reset()
        out += [int(runner.step(preprocess(frame)).argmax()) for frame in stream]
    return np.array(out)


def _gated(state: dict[str, Any]) -> tuple[np.ndarray, float]:
    gated, out, skipped = state["gated"], [], 0
    for stream in state["streams"]:
        gated.reset()
        out += [int(gated.step(frame).argmax()) for frame in stream]
        skipped += gated.stats.skipped
    return np.array(out), skipped / len(out)


def _quality_gate(every, gated, state) -> dict[str, float]:
    predictions, skipped = gated
    return {"agree": float((predictions == every).mean()), "skipped": skipped,
            "events": float(state["events"].mean())}


def _setup_gate_cost() -> dict[str, Any]:
    from ..datasets.static_stream import generate_static_stream
    from .skip import FrameGate

    frames, _ = generate_static_stream(2, frames=32, size=(720, 1280), event_rate=0.05)
    gate = FrameGate()
    return {"frames": frames, "gate": gate, "last": None, "turn": {"gate": 0, "resize": 0},
            "thumbnail": gate.config.thumbnail}


def _next_frame(state: dict[str, Any], key: str) -> np.ndarray:
    """Each side steps through the stream on its own (both gates are stateful)."""
    frames, turn = state["frames"], state["turn"]
    turn[key] += 1
    return frames[turn[key] % len(frames)]


def _resize_gate(state: dict[str, Any]) -> float | None:
    import cv2

    rows, cols = state["thumbnail"]
    grey = cv2.cvtColor(_next_frame(state, "resize"), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.int16)
    last, state["last"] = state["last"], small
    return None if last is None else float(np.abs(small - last).mean())


def _pixels_read(_, __, state) -> dict[str, float]:
    rows, cols = state["thumbnail"]
    height, width = state["frames"].shape[1:3]
    return {"resize reads px": height * width, "gate reads px": rows * cols}


def _setup_gate_delta(frames: int) -> dict[str, Any]:
    from ..datasets.static_stream import generate_static_stream
    from .delta import DeltaConfig, DeltaRunner
    from .skip import GatedRunner
    from .stream import StreamingRunner

    model = _mobilenet("causal")
    stream, events = generate_static_stream(
        0, frames=frames, size=(_SIDE, _SIDE), event_rate=0.01, noise=0.0
    )
    return {"frames": stream, "events": events, "every": StreamingRunner(model),
            "gated": GatedRunner(DeltaRunner(model, DeltaConfig(threshold=0.0)))}


def _stream_every(state: dict[str, Any]):
    import torch

    from .skip import frame_to_tensor

    runner = state["every"]
    runner.reset()
    return torch.cat([runner.step(frame_to_tensor(frame)) for frame in state["frames"]])


def _stream_gated(state: dict[str, Any]):
    import torch

    gated = state["gated"]
    gated.reset()
    logits = torch.cat([gated.step(frame) for frame in state["frames"]])
    return logits, gated.stats.skipped / len(state["frames"])


def _quality_gate_delta(every, gated, state) -> dict[str, float]:
    logits, skipped = gated
    error = float((logits - every).abs().max())
    return {"rel err": error / max(float(every.abs().max()), 1e-30), "skipped": skipped,
            "events": float(state["events"].mean())}


# delta ----------------------------------------------------------------------------------------


def _setup_delta_prefix(fraction: float, baseline: str, method: str) -> dict[str, Any]:
    import torch

    from .delta import DeltaConfig, DeltaRunner
    from .delta_conv import activate

    model = _mobilenet("causal")
    first = _frame()
    delta = DeltaRunner(model, DeltaConfig(threshold=0.0, method=method))
    backbone, prefix = model.backbone, delta.prefix

    def modules(frame):  # as functional.stream_step runs them (no shift before block 2)
        x = backbone.stem(frame)
        for block in backbone.blocks[: prefix.first_block]:
            x = block(x, x)
        return x

    def folded(frame):  # the same convs, batch norm folded in
        x = frame.contiguous(memory_format=torch.channels_last)
        for layer in prefix.layers:
            x = activate(layer.dense(x), layer.act)
        return x

    delta.step_prefix(first)
    return {"frames": (first, blob_change(first, fraction)), "delta": delta,
            "dense": modules if baseline == "modules" else folded, "turn": {"dense": 0,
                                                                          "delta": 0}}


def _alternate_call(key: str, call):
    """Call ``call(state[key], frame)`` on side ``key``'s next frame (:func:`_next_frame`; a
    pair of frames alternates)."""
    def run(state: dict[str, Any]):
        return call(state[key], _next_frame(state, key))
    return run


def _prefix_error(reference, result, state) -> dict[str, float]:
    error = float((reference - result).abs().max())
    return {"rel err": error / max(float(reference.abs().max()), 1e-30),
            "changed px": state["delta"].last_stats.changed_fraction}


def _setup_delta(fraction: float) -> dict[str, Any]:
    from .delta import DeltaConfig, DeltaRunner
    from .stream import StreamingRunner

    model = _mobilenet("causal")
    first = _frame()
    frames = (first, blob_change(first, fraction))
    dense, delta = StreamingRunner(model), DeltaRunner(model, DeltaConfig(threshold=0.0))
    dense.step(first)
    delta.step(first)
    return {"frames": frames, "dense": dense, "delta": delta, "turn": {"dense": 0, "delta": 0}}


def _alternate(key: str):
    """Step runner ``key`` on the other frame of the pair each call (``fraction`` changes)."""
    return _alternate_call(key, lambda runner, frame: runner.step(frame))


def _max_abs(reference, result, _) -> dict[str, float]:
    error = float((reference - result).abs().max())
    return {"max abs err": error, "rel err": error / max(float(reference.abs().max()), 1e-30)}


def _shift_effect(tsn_logits, tsm_logits, _) -> dict[str, float]:
    """How much the shift changes the logits, relative to their size (not an error)."""
    change = float((tsn_logits - tsm_logits).abs().max())
    return {"rel logit change": change / max(float(tsn_logits.abs().max()), 1e-30)}


def make_cases() -> list[Case]:
    """The cases of the ``video`` benchmark (see the module docstring)."""
    cases = [
        Case("tsn-vs-tsm", lambda: _setup_offline(40), lambda s: s["tsn"](s["clip"]),
             lambda s: s["tsm"](s["clip"]), _quality_offline, quick=False),
        Case("tsn-vs-tsm-small", lambda: _setup_offline(8), lambda s: s["tsn"](s["clip"]),
             lambda s: s["tsm"](s["clip"]), _quality_offline, quick=True),
        Case("stream-shift-224", _setup_shift, _step("tsn", "tsn_buffers"),
             _step("model", "buffers"), _shift_effect, quick=True),
        Case("gate-static-stream", lambda: _setup_gate(4, 600, 0.005), _every_frame, _gated,
             _quality_gate, quick=True, count_macs=False),
        Case("gate-static-stream-long", lambda: _setup_gate(8, 600, 0.005), _every_frame,
             _gated, _quality_gate, quick=False, count_macs=False),
        Case("gate-busy-stream", lambda: _setup_gate(4, 600, 0.01), _every_frame, _gated,
             _quality_gate, quick=False, count_macs=False),
        Case("gate-crowded-stream", lambda: _setup_gate(4, 300, 0.03), _every_frame, _gated,
             _quality_gate, quick=False, count_macs=False),
        Case("gate-delta-stream-224", lambda: _setup_gate_delta(120), _stream_every,
             _stream_gated, _quality_gate_delta, quick=False, count_macs=False),
        Case("gate-cost-720p", _setup_gate_cost, _resize_gate,
             _alternate_call("gate", lambda gate, frame: gate.decide(frame)), _pixels_read,
             quick=True, count_macs=False),
    ]
    dense_prefix = _alternate_call("dense", lambda dense, frame: dense(frame))
    delta_prefix = _alternate_call("delta", lambda delta, frame: delta.step_prefix(frame))
    for fraction in _DELTA_FRACTIONS:
        percent = f"{fraction * 100:g}%"
        for suffix, baseline, method in (("", "modules", "box"), ("-folded", "folded", "box"),
                                         ("-im2col", "modules", "im2col")):
            if suffix and fraction != 0.10:
                continue
            cases.append(Case(
                f"delta-prefix{suffix}-{percent}",
                functools.partial(_setup_delta_prefix, fraction, baseline, method),
                dense_prefix, delta_prefix, _prefix_error,
                params={"changed %": fraction * 100, "early stages only": 1.0},
                quick=fraction == 0.10 and suffix != "-im2col", count_macs=False,
            ))
        cases.append(Case(
            f"delta-{percent}", functools.partial(_setup_delta, fraction),
            _alternate("dense"), _alternate("delta"), _max_abs,
            params={"changed %": fraction * 100, "early stages only": 0.0},
            quick=fraction == 0.10, count_macs=False,
        ))
    return cases + export_cases()


BENCHMARKS = (
    Benchmark(
        name="video",
        title="Video: TSM vs TSN, streaming, ONNX, frame gate, delta updates",
        baseline="reference (TSN / dense / every frame / eager)",
        cases=make_cases,
        description=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        plot=PlotSpec(x="changed %", xlabel="changed pixels (%), blob-shaped, 224x224",
                      series="early stages only"),
        isolate_memory=True,
    ),
)
