"""Peak resident memory (RSS high-water mark) of one call.

On Linux the kernel's high-water mark (``VmHWM``) can be reset by writing ``5`` to
``/proc/self/clear_refs``, so the peak of one call is measured exactly. Where that is not
possible the process-lifetime peak (``getrusage``) is reported and marked as such.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PeakMemory", "measure_peak_rss"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class PeakMemory:
    """RSS before a call and its high-water mark during the call, in MiB."""

    before_mb: float
    peak_mb: float
    exact: bool  # False: peak is the process-lifetime high-water mark, not this call's

    @property
    def growth_mb(self) -> float:
        return max(0.0, self.peak_mb - self.before_mb)


def _status_kib(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _lifetime_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def measure_peak_rss(fn: Callable[[Any], Any], inputs: Any) -> tuple[Any, PeakMemory]:
    """Call ``fn(inputs)`` once; return its result and the RSS high-water mark of the call."""
    exact = _reset_high_water_mark()
    before = _status_kib("VmRSS")
    result = fn(inputs)
    peak = _status_kib("VmHWM") if exact else None
    if peak is None or before is None:
        lifetime = _lifetime_peak_mb()
        return result, PeakMemory(before_mb=lifetime, peak_mb=lifetime, exact=False)
    return result, PeakMemory(before_mb=before / 1024.0, peak_mb=peak / 1024.0, exact=True)
