"""A process-wide worker pool for numpy/scipy loops that release the GIL.

torch parallelises its own kernels over ``torch.get_num_threads()`` threads; the core's numpy
and scipy steps (kernel-map merges, scatter products) are split into independent pieces and
run here on as many threads. Every piece writes its own output, and results are collected in
input order, so nothing depends on how many threads ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import torch

__all__ = ["parallel_map", "worker_count"]

_T = TypeVar("_T")
_R = TypeVar("_R")
_MAX_WORKERS = 8
_POOL: ThreadPoolExecutor | None = None


def worker_count(pieces: int) -> int:
    """Threads to use for ``pieces`` independent pieces: ``min(torch threads, pieces, 8)``."""
    return max(1, min(torch.get_num_threads(), pieces, _MAX_WORKERS))


def parallel_map(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``[function(item) for item in items]`` on ``worker_count(len(items))`` threads, in order.

    The items are cut into that many contiguous runs; the calling thread runs the first and
    pool threads the others, so no more threads are busy than torch is allowed to use.
    """
    items = list(items)
    workers = worker_count(len(items))
    if workers == 1:
        return [function(item) for item in items]
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="edgeinfer")
    cuts = [len(items) * w // workers for w in range(workers + 1)]

    def run(w: int) -> list[_R]:
        return [function(item) for item in items[cuts[w]: cuts[w + 1]]]

    futures = [_POOL.submit(run, w) for w in range(1, workers)]
    try:
        results = run(0)
    finally:
        wait(futures)  # never return (or raise) while a piece may still be writing
    for future in futures:
        results.extend(future.result())
    return results
