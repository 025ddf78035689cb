"""Child process of ``measure_peak_rss_in_child``: one side of one case, peak RSS as JSON.

Usage: ``python -m edgeinfer.bench._memory_child BENCHMARK CASE SIDE THREADS``. Prints one
JSON line ``{"before_mb": ..., "peak_mb": ..., "exact": ...}`` on success.
"""

from __future__ import annotations

import dataclasses
import json
import sys


def main(argv: list[str]) -> int:
    import torch

    from .discover import discover_benchmarks
    from .memory import measure_peak_rss
    from .profile import DeviceProfile, device_profile

    benchmark_name, case_name, side, threads = argv
    found = {item.benchmark.name: item.benchmark for item in discover_benchmarks()}
    if benchmark_name not in found:
        print(f"no benchmark named {benchmark_name!r}", file=sys.stderr)
        return 2
    cases = {case.name: case for case in found[benchmark_name].build_cases()}
    if case_name not in cases:
        print(f"benchmark {benchmark_name!r} has no case {case_name!r}", file=sys.stderr)
        return 2
    case = cases[case_name]
    from .. import _jit
    from .allocator import _glibc

    with device_profile(DeviceProfile(int(threads))), torch.no_grad():
        state = case.setup()
        _jit.warm_up()  # numba and its kernels load before measuring, like the other libraries
        libc = _glibc()
        if libc is not None:
            libc.malloc_trim(0)  # what compiling freed goes back: the call starts on a clean heap
        _, memory = measure_peak_rss(getattr(case, side), state)
    print(json.dumps(dataclasses.asdict(memory)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
