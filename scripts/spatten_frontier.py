"""How fast can SpAtten pruning make MiniLM at 512 tokens while staying within 2 points?

Sweeps ``SpAttenConfig`` settings (token keep ratio, the layers that prune, head keep, int8
linears on or off) and, for each, measures in one process:

- the speed-up over HF's SDPA ``BertModel`` on the benchmark's input (one 512-token Lee
  window, batch 1; medians of interleaved repeats, baseline and candidate alternating);
- the benchmark's downstream quality (``edgeinfer.nlp.bench.downstream_quality``): polarity-
  probe accuracy and human-similarity Spearman on the Lee test documents, as changes against
  the unpruned model in points.

It prints one markdown row per setting, then the fastest setting whose probe and Spearman
changes are both >= -2 points: the issue's target asks 3x at that quality. Settings are
measured, not chosen on the reported sets: the shipped default comes from the tuning split
(``edgeinfer/nlp/tuning.py``).

    .venv/bin/python scripts/spatten_frontier.py --threads 1

Takes about 6 minutes on the 2-core development host.
"""

from __future__ import annotations

import argparse

import torch

from edgeinfer.bench import time_pair
from edgeinfer.bench.allocator import steady_allocator
from edgeinfer.nlp import SpAttenConfig
from edgeinfer.nlp.bench import _base, _pruned, downstream_quality, lee_windows

FP32 = None
# (label, config): the default, then token keep ratios and pruning layers, int8 or not
SETTINGS: list[tuple[str, SpAttenConfig]] = [
    ("int8 only (keep 1.0)", SpAttenConfig(token_keep=1.0)),
    ("default (keep 0.6 over layers 1-3, int8)", SpAttenConfig()),
    ("keep 0.6 over 1-3, fp32", SpAttenConfig(quant=FP32)),
    *[
        (f"keep {keep} over 1-3, int8", SpAttenConfig(token_keep=keep))
        for keep in (0.5, 0.4, 0.3)
    ],
    *[
        (f"keep {keep} after layer {layer}, int8",
         SpAttenConfig(token_keep=keep, prune_layers=(layer,)))
        for layer in (0, 1, 2) for keep in (0.6, 0.5, 0.4)
    ],
    ("keep 0.6 over 1-3, heads 0.75, int8", SpAttenConfig(head_keep=0.75)),
    ("keep 0.5 after layer 1, heads 0.75, int8",
     SpAttenConfig(token_keep=0.5, prune_layers=(1,), head_keep=0.75)),
]


def _time(config: SpAttenConfig, inputs: dict, repeats: int) -> tuple[float, float]:
    """Median ms of HF SDPA and of ``config``, timed as the benchmark harness times a pair."""
    model, pruned = _base().model, _pruned(config)
    with steady_allocator(), torch.inference_mode():
        timing = time_pair(lambda x: model(**x).last_hidden_state, lambda x: pruned(**x).hidden,
                           inputs, repeats=repeats)
    return timing.baseline_wall.median, timing.candidate_wall.median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=float, default=2.0,
                        help="largest quality loss allowed, points (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inputs = lee_windows(512, 1)
    print(f"MiniLM, 512 tokens, batch 1, {args.threads} thread(s); quality on the benchmark's "
          "sets (probe: polarity sentences; rho: Lee test documents vs human judgements)\n")
    print("| setting | HF SDPA ms | ours ms | speed-up | probe Δ | human ρ Δ |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = []
    for label, config in SETTINGS:
        quality = downstream_quality(config)
        hf, ours = _time(config, inputs, args.repeats)
        probe, rho = quality["probe Δ"], quality["human ρ Δ"]
        rows.append((hf / ours, label, probe, rho))
        print(f"| {label} | {hf:.1f} | {ours:.1f} | {hf / ours:.2f}× | {probe:+.1f} | "
              f"{rho:+.1f} |", flush=True)
    floor = -args.budget - 1e-9  # the probe moves in steps of 0.5 points (1 sentence)
    within = [row for row in rows if row[2] >= floor and row[3] >= floor]
    print()
    if within:
        speed, label, probe, rho = max(within)
        print(f"fastest within {args.budget:g} points: {label}: {speed:.2f}× "
              f"(probe {probe:+.1f}, rho {rho:+.1f})")
    else:
        print(f"no setting stays within {args.budget:g} points")


if __name__ == "__main__":
    main()
