"""Hardware-aware search of all-MiniLM-L6-v2 sub-networks for this CPU, end to end in minutes.

Builds the SuperEncoder (importance-reordered pretrained weights, or a distilled checkpoint
from ``scripts/train_hat.py`` with ``--checkpoint``), measures a small latency dataset of
random sub-networks on this device (progress bar), fits the linear and the MLP latency
predictors and prints their held-out error, then searches the best sub-network for a budget
(a fraction of the full model's measured latency) and compares it with the uniformly scaled
sub-network of the same budget. The winner is exported as a plain HF ``BertModel``.
Run with ``edgeinfer demo nlp-hat`` or ``python -m edgeinfer.demos.nlp_hat --samples 40``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from edgeinfer.demos import DemoParser

__all__ = ["main"]


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = DemoParser(prog="edgeinfer demo nlp-hat", description=__doc__)
    parser.add_argument("--samples", type=int, default=60,
                        help="sub-networks to measure for the latency dataset (>= 20)")
    parser.add_argument("--budget", type=float, default=0.5,
                        help="latency budget as a fraction of the full model's (0-1]")
    parser.add_argument("--iterations", type=int, default=5, help="evolution iterations")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the device profile (1 = one mobile big core)")
    parser.add_argument("--csv", type=Path, help="keep (and resume) the latency CSV here")
    parser.add_argument("--plot", type=Path, help="write the predicted-vs-measured PNG here")
    parser.add_argument("--checkpoint", type=Path, help="a distilled supernet checkpoint")
    args = parser.parse_args(list(argv))
    if args.samples < 20:
        parser.error(f"--samples must be >= 20 (the predictor holds 10% out); got {args.samples}")
    if not 0 < args.budget <= 1:
        parser.error(f"--budget must be in (0, 1]; got {args.budget}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    if args.iterations < 1:
        parser.error(f"--iterations must be >= 1; got {args.iterations}")
    return args


def _predictors(flow) -> list:
    from edgeinfer.nlp.hat import LatencyPredictor

    other = "linear" if flow.predictor.kind == "mlp" else "mlp"
    fitted = [flow.predictor, LatencyPredictor.fit(flow.dataset, kind=other, steps=1000,
                                                   target=flow.predictor.target)]
    for predictor in sorted(fitted, key=lambda p: p.kind):
        m = predictor.metrics
        print(f"  {predictor.kind:6s} predictor: held-out MAPE {m['mape']:5.1f}%, "
              f"RMSE {m['rmse']:.2f} ms, worst {m['max_ape']:.0f}% ({m['n_test']:.0f} nets)")
    return fitted


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0. ``argv`` e.g. ``["--samples", "40"]``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from edgeinfer.bench import DeviceProfile, device_profile

    args = _parse(sys.argv[1:] if argv is None else argv)
    with device_profile(DeviceProfile(args.threads)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from edgeinfer.nlp.hat import (
        SuperEncoder,
        compare_at_budget,
        load_checkpoint,
        plot_predictions,
        prepare_flow,
    )
    from edgeinfer.nlp.hat.flow import QUICK

    supernet = SuperEncoder.from_pretrained("all-MiniLM-L6-v2")
    if args.checkpoint is not None:
        step = load_checkpoint(args.checkpoint, supernet)
        print(f"distilled supernet from {args.checkpoint} (step {step})")
    print(f"search space: {supernet.space}")
    evolution = dataclasses.replace(QUICK.evolution, iterations=args.iterations)
    settings = dataclasses.replace(QUICK, latency_samples=args.samples, evolution=evolution)
    flow = prepare_flow(supernet, settings, csv_path=args.csv, progress=True)
    print(f"latency dataset: {len(flow.dataset)} sub-networks on [{flow.profile.describe()}]; "
          f"measure {flow.predictor.target} (see edgeinfer/nlp/hat/measure.py)")
    fitted = _predictors(flow)
    if args.plot is not None:
        print(f"  plot: {plot_predictions(fitted, flow.dataset, args.plot)}")
    print(f"full model: {flow.full_ms:.1f} ms; searching for {args.budget:.0%} of it")
    found = compare_at_budget(flow, args.budget)
    rows = (("searched", found.searched, 0), ("uniform", found.uniform, 1))
    for label, config, i in rows:
        print(f"  {label:8s} {config}\n           predicted {found.predicted_ms[i]:.1f} ms, "
              f"measured {found.measured_ms[i]:.1f} ms (budget {found.budget_ms:.1f}), "
              f"quality {found.quality[i]:.3f}")  # fmt: skip
    model = supernet.export_subnet(found.searched)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"exported {type(model).__name__}: {params:.1f} M parameters "
          f"(hidden {model.config.hidden_size}, {model.config.num_hidden_layers} layers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
