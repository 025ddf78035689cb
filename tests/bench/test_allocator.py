"""steady_allocator: freed blocks are re-used inside the block and handed back after it."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from edgeinfer.bench.allocator import steady_allocator

_BLOCK = 16 * 1024 * 1024  # bytes: above glibc's start-up mmap threshold, within the heap limit
_PAGES = _BLOCK // 4096


def _faults_per_cycle(cycles: int = 6) -> float:
    # allocate, touch every page and free a block, as a dense layer's output does per frame
    np.ones(_BLOCK // 4, dtype=np.float32).sum()  # warm: the first cycle may fault anywhere
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(cycles):
        np.ones(_BLOCK // 4, dtype=np.float32).sum()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / cycles


def test_freed_blocks_are_reused_inside_and_returned_after():
    with steady_allocator() as applied:
        if not applied:
            pytest.skip("not glibc: steady_allocator changes nothing here")
    # after the block: glibc's start-up thresholds, fixed, so every large block is mapped
    # afresh and faults on every page; inside, the same cycle re-uses the freed block
    outside = _faults_per_cycle()
    with steady_allocator():
        inside = _faults_per_cycle()
    assert inside < 0.01 * _PAGES, inside
    assert outside > 10 * max(inside, 1.0), (outside, inside)  # (huge pages fault less)
