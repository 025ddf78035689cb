"""Stream a video through the shipped causal TSM motion classifier behind a frame gate.

By default the input is several generated motion clips played one after another, each held
still for a few frames at its end (so the gate has something to skip); ``--input file.mp4``
streams a real file instead (read with ``read_video``). Every frame goes to the
:class:`~edgeinfer.video.FrameGate`; frames it lets through run one streaming TSM step (the
shift buffers carry the past), the others reuse the last prediction. Prints per-frame class,
gate decision and score, then fps, and writes an annotated video to ``--out``.
Run with ``edgeinfer demo video`` or ``python -m edgeinfer.demos.video --clips 4``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from edgeinfer.demos import DemoParser

__all__ = ["annotate", "generated_stream", "main"]

_HOLD = 4  # still frames after each generated clip


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = DemoParser(prog="edgeinfer demo video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=None, help="a video file (default: "
                        "generated motion clips)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a video checkpoint of "
                        "any supported source (edgeinfer, official TSM; default: the shipped "
                        "motion TSM); run causally")
    parser.add_argument("--clips", type=int, default=6, help="generated clips (1-50)")
    parser.add_argument("--max-frames", type=int, default=300, help="frames of --input read")
    parser.add_argument("--threshold", type=float, default=0.1, help="gate threshold (grey "
                        "levels; 0 runs every frame)")
    parser.add_argument("--out", type=Path, default=Path("edgeinfer-demo-out/video"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (one "
                        "frame of a small model gains nothing from more)")
    parser.add_argument("--quiet", action="store_true", help="no per-frame lines")
    args = parser.parse_args(list(argv))
    if not 1 <= args.clips <= 50:
        parser.error(f"--clips must be in [1, 50]; got {args.clips}")
    if args.threshold < 0:
        parser.error(f"--threshold must be >= 0; got {args.threshold}")
    if args.max_frames < 1:
        parser.error(f"--max-frames must be >= 1; got {args.max_frames}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    parser.check_input(args.input, ())
    parser.check_input(args.checkpoint, (), "--checkpoint")
    parser.prepare_out(args.out)
    return args


def generated_stream(clips: int, seed: int, size: int) -> tuple[np.ndarray, list[str]]:
    """``clips`` motion clips of cycling classes at ``size`` px, each followed by ``_HOLD``
    copies of its last frame: ``(frames uint8 (T, S, S, 3), true class name per frame)``."""
    from edgeinfer.datasets import MOTION_CLASSES, generate_motion_clip

    frames, truth = [], []
    for index in range(clips):
        name = MOTION_CLASSES[(index * 4 + 1) % len(MOTION_CLASSES)]
        clip = generate_motion_clip(name, seed + index, size=size)
        held = np.repeat(clip[-1:], _HOLD, axis=0)
        frames.extend([clip, held])
        truth.extend([name] * (len(clip) + _HOLD))
    return np.concatenate(frames), truth


def annotate(frame: np.ndarray, lines: Sequence[str], scale: int) -> np.ndarray:
    """``frame`` enlarged ``scale`` times (nearest) with ``lines`` of text drawn on it."""
    import cv2

    big = np.ascontiguousarray(np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1))
    for row, text in enumerate(lines):
        origin = (4, 14 + 14 * row)
        cv2.putText(big, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(big, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return big


def _load_frames(args: argparse.Namespace, size: int) -> tuple[np.ndarray, list[str] | None]:
    if args.input is None:
        return generated_stream(args.clips, args.seed, size)
    from edgeinfer.datasets import read_video

    return read_video(args.input, max_frames=args.max_frames), None


def _run(frames: np.ndarray, truth: list[str] | None, args: argparse.Namespace):
    from edgeinfer.bench import DeviceProfile, device_profile

    with device_profile(DeviceProfile(args.threads)):  # thread count restored afterwards
        return _run_at_profile(frames, truth, args)


def _run_at_profile(frames: np.ndarray, truth: list[str] | None, args: argparse.Namespace):
    import torch

    from edgeinfer.video import FrameGate, GateConfig, GatedRunner, StreamingRunner
    from edgeinfer.video.skip import frame_to_tensor

    model, info = args.loaded
    names, size = info.class_names, info.input.size

    def preprocess(frame: np.ndarray) -> torch.Tensor:
        # RGB in [0, 1] at the checkpoint's size; the model applies its own normalisation
        tensor = frame_to_tensor(frame)
        return torch.nn.functional.interpolate(tensor, size=size, mode="area")

    gated = GatedRunner(StreamingRunner(model), FrameGate(GateConfig(threshold=args.threshold)),
                        preprocess=preprocess)
    scale = max(1, 256 // max(frames.shape[1:3]))
    annotated, seconds = [], 0.0
    for index, frame in enumerate(frames):
        before, start = gated.stats.processed, time.perf_counter()
        logits = gated.step(frame)
        seconds += time.perf_counter() - start
        ran = gated.stats.processed > before
        label = names[int(logits.argmax())]
        expected = f" (true {truth[index]})" if truth else ""
        if not args.quiet:
            print(f"frame {index:4d}  {'run ' if ran else 'skip'}  score "
                  f"{gated.gate.last_score:7.2f}  class {label}{expected}")
        annotated.append(annotate(frame, [f"{label}", "run" if ran else "skip (reused)",
                                          f"frame {index}"], scale))
    return np.stack(annotated), gated.stats, seconds


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0. ``argv`` e.g. ``["--clips", "3", "--out", "/tmp/v"]``."""
    from edgeinfer.datasets import write_video
    from edgeinfer.video import load_pretrained

    args = _parse(sys.argv[1:] if argv is None else argv)
    args.loaded = load_pretrained(args.checkpoint or "tsm", shift="causal")
    info = args.loaded[1]
    print(f"model {info.model} from {info.source} ({info.format}), {len(info.class_names)} "
          f"classes, frames {info.input.size[1]}x{info.input.size[0]} {info.input.colour_order}")
    frames, truth = _load_frames(args, info.input.size[0] * 2)
    annotated, stats, seconds = _run(frames, truth, args)
    print(f"\n{stats.total} frames: {stats.processed} run, {stats.skipped} skipped "
          f"({100 * stats.skip_ratio:.0f} %); {stats.total / seconds:.0f} fps "
          f"({1000 * seconds / stats.total:.2f} ms/frame: gate + model, drawing excluded)")
    path = write_video(args.out / "annotated.mp4", annotated, fps=8.0)
    print(f"wrote {path} ({len(annotated)} frames, {annotated.shape[2]}x{annotated.shape[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
