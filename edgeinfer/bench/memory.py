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

__all__ = ["PeakMemory", "measure_peak_rss", "measure_peak_rss_in_child"]

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


def measure_peak_rss_in_child(benchmark: str, case: str, side: str, threads: int,
                              timeout_s: float = 600.0) -> PeakMemory:
    """The RSS high-water mark of one ``side`` call of a discovered benchmark's ``case``,
    measured in a fresh Python process (``edgeinfer.bench._memory_child``).

    In a shared process the second side starts on the heap the first side grew and the
    allocator kept, so per-call peaks are not comparable; a fresh process runs the case's
    ``setup()`` and then only this side's call. ``before_mb`` is the RSS after setup.

    Raises:
        ValueError: ``side`` is not "baseline" or "candidate".
        RuntimeError: the child failed (its last error lines are in the message).
    """
    import json
    import subprocess

    if side not in ("baseline", "candidate"):
        raise ValueError(f"side must be 'baseline' or 'candidate'; got {side!r}")
    command = [sys.executable, "-m", "edgeinfer.bench._memory_child", benchmark, case, side,
               str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                          check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(
            f"measuring the peak memory of {benchmark}/{case} ({side}) in a fresh process "
            f"failed with exit code {done.returncode}: {tail}"
        )
    return PeakMemory(**json.loads(lines[-1]))
