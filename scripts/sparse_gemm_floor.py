"""How close do the sparse convolution's paths get to their floors?

Two measurements on the point-cloud benchmark scan (``edgeinfer.pointcloud.bench``), one
process, medians of interleaved repeats:

1. A sub-manifold 3x3x3 conv with a cached kernel map at 16, 32 and 64 channels: the bare
   GEMMs on rows gathered beforehand (the ``pointcloud-gemm`` baseline), the same GEMMs with
   the rows gathered in cache-sized chunks but *no scatter at all* (a floor for any design
   that gathers rows into a buffer before its GEMM), the torch path of ``sparse_conv``, the
   fused numba kernel, and that kernel on a copy of the map whose pairs read the input rows
   in memory order (the same arithmetic without the random gather: the fused kernel's floor
   on this CPU). Each with its rate in GFLOP/s (2 x MACs / time).
2. A MinkUNet forward (width 0.5 and 1.0) against spconv's, with the time spent inside the
   convolution kernels counted (``torch.mm`` / ``torch.addmm`` and the fused kernels): spconv's
   time over that time bounds the speed-up a forward could reach if every other step (kernel
   maps, BatchNorm folding, concatenations) cost nothing. Needs spconv.

Also printed, for scale: the rate of torch's dense ``mm`` (65,536 rows by C x C) here.

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


def conv_floor(threads: int, channels: int, repeats: int = 15) -> tuple[dict[str, float], int]:
    """Medians in ms of each way to run the conv, and the map's number of pairs."""
    from edgeinfer import _jit
    from edgeinfer.common_sparse import fused, sparse_conv

    state = bench._gemm_setup(channels)
    kernel_map, feats, weight = state["map"], state["feats"], state["weight"]
    chunk = 4096 * threads
    gathered, products = torch.empty(chunk, channels), torch.empty(chunk, channels)

    def gather_and_multiply() -> None:
        for k, rows in enumerate(kernel_map.in_rows):
            for start in range(0, rows.numel(), chunk):
                stop = min(start + chunk, rows.numel())
                torch.index_select(feats, 0, rows[start:stop], out=gathered[: stop - start])
                torch.mm(gathered[: stop - start], weight[k], out=products[: stop - start])

    runs: dict[str, Callable[[], object]] = {
        "bare GEMMs": lambda: bench._gemm_baseline(state),
        "gather + GEMM, no scatter": gather_and_multiply,
        "torch path": lambda: sparse_conv(feats, weight, kernel_map, kernel_map.n_out,
                                          backend="torch"),
    }
    if _jit.available() and fused.tile_for(channels) is not None:
        pairs = fused.block_pairs(kernel_map)
        in_order = (np.arange(pairs.source.size) % kernel_map.n_in).astype(np.uint32)
        width = fused.tile_for(channels)
        kernel = _jit.get(fused.kernel_for(channels))
        x = feats.numpy()
        w = weight.numpy().reshape(27, channels, -1, width)
        out = np.empty((kernel_map.n_out, channels // width, width), dtype=np.float32)
        none = np.zeros((0, 0), dtype=np.float32)

        def rows_in_order() -> None:
            with _jit.threads():
                kernel(x, w, pairs.start, pairs.target, in_order, none, none.reshape(0, 0, 0),
                       False, pairs.block, out)  # fmt: skip

        runs["fused kernel"] = lambda: sparse_conv(feats, weight, kernel_map, kernel_map.n_out,
                                                   backend="numba")
        runs["fused, rows in memory order"] = rows_in_order
    timings = time_interleaved(runs, repeats=repeats)
    return {name: stats.median for name, stats in timings.items()}, sum(kernel_map.pair_counts())


def dense_rates(repeats: int = 7) -> dict[int, float]:
    """GFLOP/s of torch's dense ``mm`` of 65,536 rows by C x C, for scale."""
    rates = {}
    for channels in (48, 128, 256):
        a, b = torch.randn(65_536, channels), torch.randn(channels, channels)
        timings = time_interleaved({"mm": lambda: a @ b}, repeats=repeats)  # noqa: B023
        rates[channels] = 2 * 65_536 * channels * channels / timings["mm"].median / 1e6
    return rates


def network_floor(width: float, repeats: int = 5) -> dict[str, float]:
    from edgeinfer.common_sparse import fused

    state = bench._net_setup("minkunet", width)
    inside = [0.0]
    plain = torch.mm, torch.addmm, fused.fused_conv

    def counted(fn: Callable) -> Callable:
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            inside[0] += time.perf_counter() - start
            return result
        return run

    ours, kernels, theirs = [], [], []
    bench._net_candidate(state)
    bench._net_baseline(state)
    for _ in range(repeats):
        inside[0] = 0.0
        torch.mm, torch.addmm, fused.fused_conv = (counted(fn) for fn in plain)
        try:
            start = time.perf_counter()
            bench._net_candidate(state)
            ours.append(time.perf_counter() - start)
        finally:
            torch.mm, torch.addmm, fused.fused_conv = plain
        kernels.append(inside[0])
        start = time.perf_counter()
        bench._net_baseline(state)
        theirs.append(time.perf_counter() - start)
    return {name: float(np.median(values)) * 1e3
            for name, values in (("edgeinfer", ours), ("its convolutions", kernels),
                                 ("spconv", theirs))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    torch.set_num_threads(args.threads)
    with steady_allocator(), torch.no_grad():
        rates = dense_rates()
        print(f"dense torch mm, 65,536 rows, {args.threads} thread(s): "
              + ", ".join(f"C={c}: {r:.0f} GFLOP/s" for c, r in rates.items()))
        for channels in (16, 32, 64):
            conv, pairs = conv_floor(args.threads, channels)
            bare = conv["bare GEMMs"]
            flops = 2 * pairs * channels * channels / 1e6
            print(f"cached-map subm3 conv, {channels} channels, {args.threads} thread(s): "
                  + ", ".join(f"{name} {ms:.1f} ms ({ms / bare:.2f}x bare, "
                              f"{flops / ms:.0f} GFLOP/s)" for name, ms in conv.items()))
        try:
            import spconv  # noqa: F401
        except ImportError:
            print("MinkUNet floor skipped: spconv is not installed (extra 'peers')")
            return
        for width in (0.5, 1.0):
            net = network_floor(width)
            kernels = net["its convolutions"]
            print(f"MinkUNet width {width}, {args.threads} thread(s): edgeinfer "
                  f"{net['edgeinfer']:.0f} ms (its convolutions {kernels:.0f} ms), spconv "
                  f"{net['spconv']:.0f} ms; speed-up {net['spconv'] / net['edgeinfer']:.2f}x, at "
                  f"most {net['spconv'] / kernels:.2f}x with every step but the convolutions free")


if __name__ == "__main__":
    main()
