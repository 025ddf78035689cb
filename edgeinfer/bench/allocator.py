"""Keep freed memory inside the process while a pair is timed (glibc's allocator).

glibc hands large freed blocks back to the kernel (``munmap``, or trimming the top of the
heap) by thresholds that it moves as the process runs. Whether a call pays page faults for
re-allocating its buffers then depends on what ran before it: measured on this project's
video delta case, the dense side took 5 ms per call with no page faults when run first, and
13 ms with 2,320 page faults per call once the other side had run, in the same process. The
order of cases, not the code, decided a 2.5x difference.

:func:`steady_allocator` fixes the thresholds while a pair is timed, so both sides re-use
freed memory the way a long-running application (which allocates the same buffers every
frame or request) reaches once it is warm: blocks up to 32 MiB come from the heap, and the
heap is not trimmed. On exit the thresholds are set to glibc's start-up values and freed
memory is returned (``malloc_trim``), so the peak-memory measurements that follow are not
inflated by retained blocks. Elsewhere than glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["steady_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP_BLOCK_LIMIT = 32 * 1024 * 1024  # glibc's largest M_MMAP_THRESHOLD on 64-bit
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int
_GLIBC_DEFAULT = 128 * 1024  # both thresholds at start-up


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both exist only in glibc
    except (OSError, AttributeError):
        return None
    return libc


@contextmanager
def steady_allocator() -> Iterator[bool]:
    """Within the block, glibc keeps freed memory for re-use (see the module docstring).

    Yields True when the thresholds were set (glibc), False when nothing was changed.
    """
    libc = _glibc()
    applied = bool(
        libc is not None
        and libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCK_LIMIT)
        and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
    )
    try:
        yield applied
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
            libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
            libc.malloc_trim(0)
