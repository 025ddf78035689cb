"""Multiply-accumulate counts, where torch can count them.

Uses ``torch.utils.flop_counter.FlopCounterMode``, which knows matrix products, convolutions
and attention; MACs are its FLOPs / 2. Work done outside torch (numpy, scipy, a compiled
peer) or in ops it does not know (gathers, scatters) is not counted, so a count of 0 is
reported as unknown (``None``), never as "free".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["count_macs"]


def count_macs(fn: Callable[[Any], Any], inputs: Any) -> int | None:
    """MACs of one call ``fn(inputs)`` as counted by torch, or ``None`` if it counted none."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(inputs)
    flops = int(counter.get_total_flops())
    return flops // 2 if flops > 0 else None
