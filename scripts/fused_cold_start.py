"""Cold start of the fused kernels: what the first call in a fresh process costs.

numba compiles ``edgeinfer``'s kernels at first use and caches them on disk (``cache=True``,
next to the sources, or under ``$NUMBA_CACHE_DIR``); a cache is valid for one numba version,
source file and CPU model. Each row here runs in a fresh process and times, for the shipped
MinkUNet on one 64-beam scene (``Segmenter.segment``: voxelise, network, back to the points):
the imports, the model load, the first call and the median of the next five calls.

- ``cold cache``: an empty ``NUMBA_CACHE_DIR`` (what a user's first run after installing, or
  after moving to another CPU model, pays: every kernel the call reaches is compiled);
- ``warm cache``: the same folder again (a second process: kernels load from the cache);
- ``torch path``: ``EDGEINFER_JIT=0`` (no numba kernel is used).

    taskset -c 1 .venv/bin/python scripts/fused_cold_start.py --threads 1

Takes about a minute on the 2-core development host.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, statistics, sys, time
start = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[1]))
from edgeinfer.datasets import generate_scene
from edgeinfer.pointcloud import Segmenter
imported = time.perf_counter()
scan = generate_scene(0)
segmenter = Segmenter()
segmenter.loaded
loaded = time.perf_counter()
segmenter.segment(scan.points, scan.intensity)
first = time.perf_counter()
steady = []
for _ in range(5):
    tick = time.perf_counter()
    segmenter.segment(scan.points, scan.intensity)
    steady.append(time.perf_counter() - tick)
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported,
                  "first_s": first - loaded, "steady_ms": 1000 * statistics.median(steady)}))
"""


def _child(threads: int, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(threads)], capture_output=True,
                          text=True, env=env, timeout=900)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the children")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "EDGEINFER_JIT")}
    print(f"MinkUNet (shipped), generate_scene(0), {args.threads} thread(s)\n")
    print("| process | imports s | model load s | first call s | next calls ms (median of 5) |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="edgeinfer-numba-cache-") as cache:
        rows = (("cold cache", {**base, "NUMBA_CACHE_DIR": cache}),
                ("warm cache", {**base, "NUMBA_CACHE_DIR": cache}),
                ("torch path (EDGEINFER_JIT=0)", {**base, "EDGEINFER_JIT": "0"}))
        for label, env in rows:
            r = _child(args.threads, env)
            print(f"| {label} | {r['import_s']:.2f} | {r['load_s']:.2f} | {r['first_s']:.2f} | "
                  f"{r['steady_ms']:.1f} |")


if __name__ == "__main__":
    main()
