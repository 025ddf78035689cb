"""Can an exported float32 TSM step run 3x faster than eager torch on this CPU?

The video issue asks the default runtime for an exported streaming model to be >= 3x faster
per frame than eager torch at 1 thread. This script measures, in one process, on the
benchmark's model (MobileNetV2-TSM, width 1.0, seeded weights, one 224x224 streaming step,
``onnx-stream-224`` in ``edgeinfer bench video``):

1. eager torch, ONNX Runtime float32 and ExecuTorch/XNNPACK float32 per step (medians of
   interleaved repeats) and the step time the 3x target needs (eager / 3);
2. the step's multiply-accumulates by kind (dense convs, depthwise convs, the classifier),
   counted with forward hooks;
3. the host's float32 GEMM peak: the fastest of 30 ``torch.mm`` of 1024x1024 matrices (MKL),
   in MACs/s;
4. ONNX Runtime's own profile of the step, by kind: how fast its dense convs already run
   against that peak, and what its depthwise convs and the rest cost.

From these it prints an *idealised* step: every dense-conv MAC at the GEMM peak, plus ONNX
Runtime's depthwise convs, plus nothing else. If even that misses eager / 3, the target needs
depthwise kernels faster than both runtimes available here, or a fused kernel of our own.

    .venv/bin/python scripts/video_runtime_floor.py --threads 1

Needs the ``mobile`` extra (onnx, onnxruntime) and ``executorch``; about a minute.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeinfer.bench import time_interleaved
from edgeinfer.bench.allocator import steady_allocator
from edgeinfer.video import export
from edgeinfer.video.bench import _frame, _mobilenet
from edgeinfer.video.runtime import ExecuTorchStreamingRunner, OnnxStreamingRunner

SIDE = 224


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def gemm_peak(repeats: int = 30) -> float:
    """Best MACs/s of a 1024^3 float32 ``torch.mm`` over ``repeats`` calls (a peak: the
    fastest call, since a shared host only ever slows a call down)."""
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    for _ in range(3):
        a @ b
    times = [_timed(lambda: a @ b) for _ in range(repeats)]
    return 1024**3 / (min(times) / 1e3)


def count_macs(model, frame, buffers) -> dict[str, int]:
    """MACs of one streaming step by kind: ``dense`` (groups == 1 convs), ``depthwise``,
    ``linear``."""
    macs: collections.Counter[str] = collections.Counter()

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups
            per_output *= module.kernel_size[0] * module.kernel_size[1]
            kind = "dense" if module.groups == 1 else "depthwise"
            macs[kind] += output.numel() * per_output
        else:
            macs["linear"] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.inference_mode():
        model.step(frame, buffers)
    for handle in handles:
        handle.remove()
    return dict(macs)


def ort_profile(path: Path, threads: int, folder: Path, runs: int = 20) -> dict[str, float]:
    """Mean ms per step inside ONNX Runtime's kernels, by kind of node."""
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "ort-profile")
    optimized = folder / "optimized.onnx"
    options.optimized_model_filepath = str(optimized)
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    feeds = {item.name: np.zeros(item.shape, np.float32) for item in session.get_inputs()}
    feeds["frame"] = _frame(0, SIDE).numpy()
    for _ in range(runs):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    kinds = {}
    for node in onnx.load(str(optimized)).graph.node:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            kinds[node.name] = "dense conv" if attributes.get("group", 1) == 1 else "depthwise conv"
        else:
            kinds[node.name] = "other"
    spent: collections.Counter[str] = collections.Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            spent[kinds.get(name[: -len("_kernel_time")], "other")] += event["dur"] / 1e3
    return {kind: value / runs for kind, value in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, frame = _mobilenet("causal"), _frame(0, SIDE)
    buffers = model.init_buffers(1, SIDE, SIDE)
    with tempfile.TemporaryDirectory(prefix="edgeinfer-floor-") as tmp:
        folder = Path(tmp)
        onnx_path = export(model, "onnx", folder / "step.onnx", height=SIDE, width=SIDE)
        pte_path = export(model, "executorch", folder / "step.pte", height=SIDE, width=SIDE)
        onnx_runner = OnnxStreamingRunner(onnx_path, num_threads=args.threads)
        pte_runner = ExecuTorchStreamingRunner(pte_path, num_threads=args.threads)
        runners = {
            "eager torch": lambda: model.step(frame, buffers),
            "ONNX Runtime fp32": lambda: onnx_runner.step(frame),
            "ExecuTorch XNNPACK fp32": lambda: pte_runner.step(frame),
        }
        with steady_allocator(), torch.inference_mode():  # as the benchmark harness does
            timings = time_interleaved(runners, repeats=args.repeats)
        medians = {name: stats.median for name, stats in timings.items()}
        profile = ort_profile(onnx_path, args.threads, folder)
    macs = count_macs(model, frame, buffers)
    peak = gemm_peak()
    eager = medians["eager torch"]
    print(f"MobileNetV2-TSM streaming step, {SIDE}x{SIDE}, {args.threads} thread(s)\n")
    print("| runtime | ms per step (median) | vs eager |")
    print("|---|---:|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} | {eager / value:.2f}× |")
    print(f"\n3x target: a step in at most {eager / 3:.2f} ms")
    print(f"host float32 GEMM peak (fastest of 30 torch.mm 1024^3): {peak / 1e9:.1f} GMAC/s")
    print("MACs per step: " + ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in sorted(macs.items())))
    # profiling adds a per-node cost: scale the kinds to the unprofiled step time
    scale = medians["ONNX Runtime fp32"] / sum(profile.values())
    profile = {kind: value * scale for kind, value in profile.items()}
    print(f"ONNX Runtime kernel time per step (profile scaled by {scale:.2f} to the unprofiled "
          "step): " + ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(profile.items())))
    dense_rate = macs["dense"] / (profile.get("dense conv", float("nan")) / 1e3)
    print(f"ONNX Runtime dense convs run at {dense_rate / 1e9:.1f} GMAC/s "
          f"({100 * dense_rate / peak:.0f}% of the GEMM peak)")
    at_peak = (macs["dense"] + macs.get("linear", 0)) / peak * 1e3
    ideal = at_peak + profile["depthwise conv"]
    print(f"dense MACs at the peak: {at_peak:.2f} ms, which leaves {eager / 3 - at_peak:.2f} ms "
          f"for the depthwise convs and everything else (ONNX Runtime: "
          f"{profile['depthwise conv'] + profile.get('other', 0.0):.2f} ms)")
    print(f"idealised step (dense MACs at the peak + ONNX Runtime's depthwise convs, nothing "
          f"else): {ideal:.2f} ms = {eager / ideal:.2f}× eager")


if __name__ == "__main__":
    main()
