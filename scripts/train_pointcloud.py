"""Train the point-cloud segmenter on generated scenes and write its checkpoint.

    python scripts/train_pointcloud.py                      # ~5-8 min, writes the shipped model
    python scripts/train_pointcloud.py --steps 20 --scenes 2 --out /tmp/quick.pt

Prints the held-out per-class IoU, the mIoU and the training time; the checkpoint records the
seeds, steps, final training loss and the measured IoU.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from edgeinfer.datasets import SCENE_CLASSES
from edgeinfer.pointcloud.pretrained import (
    FEATURES,
    PRETRAINED_PATH,
    load_checkpoint,
    save_checkpoint,
)
from edgeinfer.pointcloud.train import TrainConfig, train_segmenter


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimiser steps")
    parser.add_argument("--scenes", type=int, default=len(defaults.train_seeds),
                        help="training scenes, seeds 1000..1000+scenes-1")
    parser.add_argument("--eval-scenes", type=int, default=len(defaults.eval_seeds),
                        help="held-out scenes, seeds 0..eval_scenes-1")
    parser.add_argument("--beams", type=int, default=defaults.beams)
    parser.add_argument("--voxel-size", type=float, default=defaults.voxel_size)
    parser.add_argument("--width", type=float, default=defaults.width)
    parser.add_argument("--blocks", type=int, default=defaults.blocks)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest here)")
    parser.add_argument("--out", type=Path, default=PRETRAINED_PATH, help="checkpoint path")
    args = parser.parse_args(list(argv))
    if not 1 <= args.scenes <= 1000:
        parser.error(f"--scenes must be in [1, 1000]; got {args.scenes}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Train, print the held-out IoU, write the checkpoint; returns 0."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    config = TrainConfig(
        train_seeds=tuple(range(1000, 1000 + args.scenes)),
        eval_seeds=tuple(range(args.eval_scenes)), beams=args.beams,
        voxel_size=args.voxel_size, width=args.width, blocks=args.blocks,
        steps=args.steps, lr=args.lr, seed=args.seed,
    )
    print(f"training on {args.scenes} scenes, {args.steps} steps, {args.threads} thread(s): "
          f"{config}")
    with tqdm(total=config.steps, unit="step") as bar:
        def progress(step: int, loss: float) -> None:
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)

        start = time.perf_counter()
        model, report = train_segmenter(config, progress=progress)
    print(f"\ntrained in {time.perf_counter() - start:.0f} s; mean voxels/scan "
          f"{report.mean_voxels:.0f}; final train loss {report.final_loss:.4f}")
    print(f"held-out IoU on seeds {list(config.eval_seeds)} (per point):")
    for name, iou in report.class_iou.items():
        print(f"  {name:<11} {100 * iou:5.1f}")
    print(f"  {'mIoU':<11} {100 * report.miou:5.1f}")
    training = {
        "train_seeds": list(config.train_seeds), "eval_seeds": list(config.eval_seeds),
        "beams": config.beams, "steps": config.steps, "lr": config.lr, "seed": config.seed,
        "augment": config.augment, "class_balanced": config.class_balanced,
        "final_train_loss": report.final_loss, "seconds": round(report.seconds, 1),
        "held_out_class_iou": report.class_iou, "held_out_miou": report.miou,
        "torch": str(torch.__version__), "threads": args.threads,
    }
    meta = {"class_names": list(SCENE_CLASSES), "voxel_size": config.voxel_size,
            "features": list(FEATURES), "training": training}
    path = save_checkpoint(args.out, model, meta)
    load_checkpoint(path)  # the written file reads back
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
