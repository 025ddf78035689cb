"""Distil the HAT SuperEncoder of all-MiniLM-L6-v2 on the offline corpus (sandwich sampling).

    python scripts/train_hat.py                                # <= 55 min, resumable
    python scripts/train_hat.py --steps 3 --checkpoint /tmp/hat.pt --eval-texts 16   # smoke

The supernet starts from the pretrained model with heads, FFN neurons and hidden channels
reordered by importance; each step trains the largest, the smallest and two random
sub-networks on 32 training sentences against the original model (see
``edgeinfer.nlp.hat.train``). The checkpoint is written outside the repository by default
(``~/.cache/edgeinfer/hat/supernet.pt``) every 25 steps; running the same command again
continues from it (``--fresh`` starts over). Before and after training the similarity quality
(Spearman of pairwise cosines against the original model) of a few sub-networks is printed,
measured on held-out ``valid`` sentences.

Measured here (1 thread, shared 2-core host, ~4-9 s per step), quality on 64 valid sentences
for largest / uniform 2/3 / uniform 1/2 / E256 L3 / smallest, before 1.000 / 0.644 / 0.420 /
0.325 / 0.197:
    --steps 60 --lr 2e-5   0.981 / 0.657 / 0.452 / 0.355 / 0.193   (277 s; the default lr)
    --steps 80 --lr 1e-4   0.882 / 0.588 / 0.450 / 0.382 / 0.173   (599 s; too high)
    default (600 steps, 2 threads)   0.899 / 0.613 / 0.455 / 0.401 / 0.178   (1,846 s, 31 min
                                     wall in all, peak RSS 1.7 GB; measured 2026-11-21)
The full run helps the mid-small sub-networks (uniform 1/2 and E256 L3 gain 3.5 and 7.6
points) but costs the largest 10 points and uniform 2/3 3 points: sharing weights with the
small ones pulls the large ones away from the original model. ``edgeinfer bench nlp-hat``
therefore compares architectures on the inherited (undistilled) weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from edgeinfer.nlp.hat import (
    DEFAULT_CHECKPOINT,
    QualityEvaluator,
    SubConfig,
    SuperEncoder,
    TrainConfig,
    corpus_splits,
    train_supernet,
)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--random-subnets", type=int, default=defaults.random_subnets)
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--time-limit", type=float, default=3300.0, help="seconds of training")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--eval-texts", type=int, default=64,
                        help="held-out sentences for the before/after quality (0: skip)")
    args = parser.parse_args(list(argv))
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    return args


def _report(label: str, supernet, teacher, texts: list[str]) -> None:
    if not texts:
        return
    evaluator = QualityEvaluator(supernet, texts, teacher=teacher)
    space = supernet.space
    configs = {"largest": space.largest(), "uniform 2/3": space.uniform(0.67),
               "uniform 1/2": space.uniform(0.5), "E256 L3": SubConfig(256, (768,) * 3, (8,) * 3),
               "smallest": space.smallest()}  # fmt: skip
    scores = ", ".join(f"{name} {evaluator(config):.3f}" for name, config in configs.items())
    print(f"{label} similarity quality on {len(texts)} valid sentences: {scores}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = _parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         random_subnets=args.random_subnets, max_length=args.max_length,
                         time_limit_s=args.time_limit)  # fmt: skip
    supernet = SuperEncoder.from_pretrained(args.model)
    teacher = supernet.export_subnet(supernet.space.largest())  # the original model, frozen
    splits = corpus_splits()
    valid = list(splits["valid"][: args.eval_texts])
    resume = not args.fresh and args.checkpoint.is_file()
    print(f"{len(splits['train'])} training sentences, {config.steps} steps of batch "
          f"{config.batch_size}, {args.threads} thread(s); checkpoint {args.checkpoint}"
          + (" (resuming)" if resume else ""), flush=True)  # fmt: skip
    _report("before", supernet, teacher, valid)
    start = time.perf_counter()
    result = train_supernet(supernet, splits["train"], config, checkpoint=args.checkpoint,
                            resume=not args.fresh)  # fmt: skip
    print(f"trained to step {result.steps}/{config.steps} in {time.perf_counter() - start:.0f} s "
          f"(this run); checkpoint {args.checkpoint}", flush=True)  # fmt: skip
    _report("after", supernet, teacher, valid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
