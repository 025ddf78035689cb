"""Device profile: the thread count a benchmark runs at, set for the run and restored after.

One thread stands for one mobile big core (the default); ``all`` means every core this process
may run on. The profile sets torch's intra-op threads, the BLAS/OpenMP pools already loaded
(through threadpoolctl) and the OpenMP variables that compiled peers read when they start
their own pools; all of it is restored when the ``with`` block ends, even on error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "THREAD_ENV_VARS",
    "DeviceProfile",
    "available_cores",
    "device_profile",
    "parse_threads",
]

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """Number of CPU cores this process may run on (its affinity mask, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class DeviceProfile:
    """What a benchmark pretends the device is. ``threads=1`` is one mobile big core."""

    threads: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int):
            raise TypeError(
                f"DeviceProfile.threads must be an int >= 1; got {type(self.threads).__name__}"
            )
        if self.threads < 1:
            raise ValueError(f"DeviceProfile.threads must be >= 1; got {self.threads}")

    @property
    def label(self) -> str:
        return "1 thread" if self.threads == 1 else f"{self.threads} threads"


def parse_threads(spec: str) -> tuple[int, ...]:
    """Parse a thread list such as ``"1,2"`` or ``"1,all"`` into distinct thread counts.

    Raises:
        ValueError: the text is not a comma-separated list of positive integers or ``all``.
    """
    if not isinstance(spec, str):
        raise TypeError(f"threads must be a string such as '1,2'; got {type(spec).__name__}")
    counts: list[int] = []
    for raw in spec.split(","):
        item = raw.strip().lower()
        if item == "all":
            value = available_cores()
        elif item.isdigit() and int(item) >= 1:
            value = int(item)
        else:
            raise ValueError(
                "threads must be a comma-separated list of positive integers or 'all' "
                f"(e.g. '1,2' or '1,all'); got {spec!r}"
            )
        if value not in counts:
            counts.append(value)
    return tuple(counts)


@contextmanager
def device_profile(profile: DeviceProfile) -> Iterator[DeviceProfile]:
    """Run the body of the ``with`` block under ``profile``; restore every setting after.

    Restored: ``torch.get_num_threads()``, the environment variables in ``THREAD_ENV_VARS``
    (unset ones are unset again) and the limits of the BLAS/OpenMP pools threadpoolctl sees.
    """
    import torch
    from threadpoolctl import threadpool_limits

    if not isinstance(profile, DeviceProfile):
        raise TypeError(f"profile must be a DeviceProfile; got {type(profile).__name__}")
    saved_threads = torch.get_num_threads()
    saved_env = {name: os.environ.get(name) for name in THREAD_ENV_VARS}
    pools = threadpool_limits(limits=profile.threads)
    try:
        for name in THREAD_ENV_VARS:
            os.environ[name] = str(profile.threads)
        torch.set_num_threads(profile.threads)
        yield profile
    finally:
        pools.restore_original_limits()
        torch.set_num_threads(saved_threads)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
