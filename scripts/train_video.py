"""Train the TSM (causal shift) and TSN (no shift) motion classifiers and write the checkpoints.

    python scripts/train_video.py                          # both, <= 6 min each
    python scripts/train_video.py --kind tsn --threads 1   # one of them (run two in parallel)

The shipped pair was made by running ``--kind tsm`` and ``--kind tsn`` in parallel with
``--threads 1`` (2500 steps, ~3.5 min each on a shared 2-core host). lr 3e-3 (and 2e-3) left
TSM at chance for 1000-2000 steps; 1e-3 learns.
    python scripts/train_video.py --steps 5 --out-dir /tmp/video-ckpt   # smoke test

Both models share the architecture (same parameters and MACs); only the temporal shift differs.
Prints the held-out accuracy overall and per direction pair; the checkpoint stores it too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from edgeinfer.datasets import MOTION_CLASSES, make_motion_dataset
from edgeinfer.video import create_model
from edgeinfer.video.pretrained import CHECKPOINT_DIR, PRETRAINED_KINDS, save_checkpoint
from edgeinfer.video.train import TrainConfig, evaluate, train_classifier

SHIFTS = {"tsm": "causal", "tsn": "none"}


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["tsm", "tsn", "both"], default="both")
    parser.add_argument("--tsm-shift", choices=["causal", "bidirectional"], default="causal")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--time-limit", type=float, default=345.0, help="seconds per model")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument("--arch", choices=["tsm_mobilenetv2", "tsm_resnet18"],
                        default="tsm_resnet18")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--fold-div", type=int, default=4, help="1/fold_div of channels shift")
    parser.add_argument("--clips-per-class", type=int, default=defaults.clips_per_class)
    parser.add_argument("--eval-per-class", type=int, default=40)
    parser.add_argument("--eval-seed", type=int, default=0, help="held-out set seed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out-dir", type=Path, default=CHECKPOINT_DIR)
    return parser.parse_args(list(argv))


def _train_one(kind: str, args: argparse.Namespace, held_out) -> None:
    shift = args.tsm_shift if kind == "tsm" else SHIFTS[kind]
    config = TrainConfig(size=args.size, steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, clips_per_class=args.clips_per_class,
                         time_limit_s=args.time_limit)
    torch.manual_seed(config.seed)
    model = create_model(args.arch, num_classes=len(MOTION_CLASSES),
                         n_segment=config.frames, shift=shift, width=args.width,
                         dropout=args.dropout, fold_div=args.fold_div)

    def progress(step: int, loss: float) -> None:
        if step % 10 == 0 or step == config.steps - 1:
            print(f"[{kind}] step {step:4d} loss {loss:.3f}", flush=True)

    result = train_classifier(model, config, on_step=progress)
    scores = evaluate(model, *held_out, MOTION_CLASSES)
    print(f"[{kind}] shift={shift} {result.steps} steps in {result.seconds:.0f} s; held-out "
          + ", ".join(f"{name} {value:.3f}" for name, value in scores.items()), flush=True)
    metadata = {
        "kind": kind, "train_config": {k: v for k, v in vars(config).items()},
        "steps_run": result.steps, "train_seconds": round(result.seconds, 1),
        "final_loss": sum(result.losses[-10:]) / len(result.losses[-10:]),
        "eval_seed": args.eval_seed, "eval_per_class": args.eval_per_class,
        "held_out": scores, "threads": torch.get_num_threads(), "torch": str(torch.__version__),
    }
    path = save_checkpoint(args.out_dir / PRETRAINED_KINDS[kind], model,
                           class_names=MOTION_CLASSES, input_size=args.size, metadata=metadata)
    print(f"[{kind}] wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Train the requested model(s); returns 0."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    held_out = make_motion_dataset(args.eval_per_class, args.eval_seed, size=args.size)
    start = time.perf_counter()
    for kind in ("tsm", "tsn") if args.kind == "both" else (args.kind,):
        _train_one(kind, args, held_out)
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
