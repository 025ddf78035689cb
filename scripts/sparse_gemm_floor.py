"""How close can a gather -> GEMM -> scatter convolution get, without a fused kernel?

Two measurements on the point-cloud benchmark scan (``edgeinfer.pointcloud.bench``), one
process, medians of interleaved repeats:

1. A sub-manifold 3x3x3 conv with a cached kernel map at 32 channels: the bare GEMMs on rows
   gathered beforehand (the ``pointcloud-gemm`` baseline), the same GEMMs with the rows
   gathered in cache-sized chunks but *no scatter at all*, and ``sparse_conv``. The middle
   figure is a floor for any design that gathers rows into a buffer before its GEMM.
2. A MinkUNet forward (width 0.5) against spconv's, with the time spent inside ``torch.mm`` /
   ``torch.addmm`` counted: spconv's time over that GEMM time bounds the speed-up a forward
   could reach if every other step (gathers, sums, kernel maps) cost nothing. Needs spconv.

    .venv/bin/python scripts/sparse_gemm_floor.py --threads 1
    .venv/bin/python scripts/sparse_gemm_floor.py --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from edgeinfer.bench import time_interleaved
from edgeinfer.bench.allocator import steady_allocator
from edgeinfer.pointcloud import bench


def conv_floor(threads: int, repeats: int = 15) -> dict[str, float]:
    state = bench._gemm_setup(32)
    kernel_map, feats, weight = state["map"], state["feats"], state["weight"]
    chunk = 4096 * threads
    gathered, products = torch.empty(chunk, 32), torch.empty(chunk, 32)

    def gather_and_multiply() -> None:
        for k, rows in enumerate(kernel_map.in_rows):
            for start in range(0, rows.numel(), chunk):
                stop = min(start + chunk, rows.numel())
                torch.index_select(feats, 0, rows[start:stop], out=gathered[: stop - start])
                torch.mm(gathered[: stop - start], weight[k], out=products[: stop - start])

    timings = time_interleaved({
        "bare GEMMs": lambda: bench._gemm_baseline(state),
        "gather + GEMM, no scatter": gather_and_multiply,
        "sparse_conv": lambda: bench._gemm_candidate(state),
    }, repeats=repeats)
    return {name: stats.median for name, stats in timings.items()}


def network_floor(repeats: int = 5) -> dict[str, float]:
    state = bench._net_setup("minkunet", 0.5)
    inside = [0.0]
    plain = torch.mm, torch.addmm

    def counted(fn: Callable) -> Callable:
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            inside[0] += time.perf_counter() - start
            return result
        return run

    ours, gemms, theirs = [], [], []
    bench._net_candidate(state)
    bench._net_baseline(state)
    for _ in range(repeats):
        inside[0] = 0.0
        torch.mm, torch.addmm = counted(plain[0]), counted(plain[1])
        try:
            start = time.perf_counter()
            bench._net_candidate(state)
            ours.append(time.perf_counter() - start)
        finally:
            torch.mm, torch.addmm = plain
        gemms.append(inside[0])
        start = time.perf_counter()
        bench._net_baseline(state)
        theirs.append(time.perf_counter() - start)
    return {name: float(np.median(values)) * 1e3
            for name, values in (("edgeinfer", ours), ("its GEMM calls", gemms),
                                 ("spconv", theirs))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    torch.set_num_threads(args.threads)
    with steady_allocator(), torch.no_grad():
        conv = conv_floor(args.threads)
        bare = conv["bare GEMMs"]
        print(f"cached-map subm3 conv, 32 channels, {args.threads} thread(s): "
              + ", ".join(f"{name} {ms:.1f} ms ({ms / bare:.2f}x bare)"
                          for name, ms in conv.items()))
        try:
            import spconv  # noqa: F401
        except ImportError:
            print("MinkUNet floor skipped: spconv is not installed (extra 'peers')")
            return
        net = network_floor()
        print(f"MinkUNet width 0.5, {args.threads} thread(s): edgeinfer {net['edgeinfer']:.0f} ms "
              f"(its GEMM calls {net['its GEMM calls']:.0f} ms), spconv {net['spconv']:.0f} ms; "
              f"speed-up {net['spconv'] / net['edgeinfer']:.2f}x, at most "
              f"{net['spconv'] / net['its GEMM calls']:.2f}x with every non-GEMM step free")


if __name__ == "__main__":
    main()
