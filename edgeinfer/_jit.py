"""Hand-fused numba kernels: compiled at first use, cached on disk, torch kept as reference.

A kernel module declares its kernels with :func:`kernel` (a function that builds and returns
the ``numba.njit`` function); :func:`get` compiles one on first use. When numba is missing,
fails to import, or ``EDGEINFER_JIT=0`` is set, :func:`get` returns ``None`` and the caller
runs its torch path, which is also what the tests compare every kernel with.

Kernels run on as many numba threads as torch's intra-op pool (:func:`threads`), so one
``torch.set_num_threads`` call governs both; every kernel here computes each output from its
own inputs only, so results do not depend on the thread count. Several Python threads may
call kernels at once (a threaded Dask worker): where numba's threading layer is not
thread-safe, :func:`threads` serialises them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["ENV", "KERNEL_MODULES", "available", "get", "kernel", "threads", "warm_up", "warmer"]

ENV = "EDGEINFER_JIT"
"""Set to ``0`` to run the torch paths instead of the numba kernels."""

_BUILDERS: dict[str, Callable[[Any], Any]] = {}
_WARMERS: list[Callable[[], None]] = []


@functools.cache
def _numba() -> Any:
    # the register kernels need LLVM's SLP vectoriser, which numba leaves off by default
    os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")
    try:
        import numba
    except Exception:  # not installed, or an llvmlite that does not load: torch path
        return None
    if os.environ.get("NUMBA_SLP_VECTORIZE") == "1":
        numba.config.SLP_VECTORIZE = True  # numba imported earlier read the variable unset
    return numba


def available() -> bool:
    """Whether numba kernels run (numba imports and ``EDGEINFER_JIT`` is not ``0``)."""
    return os.environ.get(ENV, "1") != "0" and _numba() is not None


def kernel(name: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register ``builder(numba) -> compiled function`` under ``name`` (a decorator)."""
    def register(builder: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in _BUILDERS:
            raise ValueError(f"a kernel named {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder
    return register


@functools.cache
def _built(name: str) -> Any:
    return _BUILDERS[name](_numba())


def get(name: str) -> Any:
    """The compiled kernel ``name``, or ``None`` when kernels are off (see the module doc)."""
    if not available():
        return None
    return _built(name)


_SERIAL = threading.Lock()


_LAYER: list[str] = []  # numba's threading layer, once a parallel kernel has chosen it


def _needs_lock(numba: Any) -> bool:
    # numba's "workqueue" threading layer (the one left when neither OpenMP nor TBB loads)
    # aborts the process when two threads launch parallel kernels at once: serialise those
    if not _LAYER:
        try:
            _LAYER.append(numba.threading_layer())
        except ValueError:  # no parallel kernel has run yet: the layer is not chosen
            return True
    return _LAYER[0] == "workqueue"


@contextlib.contextmanager
def threads() -> Iterator[None]:
    """numba's thread count set to torch's intra-op thread count for the block, and parallel
    kernels of several Python threads (a Dask worker's) serialised where numba's threading
    layer is not thread-safe."""
    import torch

    numba = _numba()
    torch_threads = torch.get_num_threads()
    wanted = max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS))
    lock = _SERIAL if _needs_lock(numba) else contextlib.nullcontext()
    with lock:
        before = numba.get_num_threads()  # the first call starts numba's pool: see below
        if torch.get_num_threads() != torch_threads:  # inside the block too, not only after
            torch.set_num_threads(torch_threads)
        if wanted != before:
            numba.set_num_threads(wanted)
        try:
            yield
        finally:
            if wanted != before:
                numba.set_num_threads(before)
            # starting numba's OpenMP pool sets the process's OpenMP thread count, which torch
            # shares, to NUMBA_NUM_THREADS: give torch back the count the caller chose
            if torch.get_num_threads() != torch_threads:
                torch.set_num_threads(torch_threads)


def warmer(function: Callable[[], None]) -> Callable[[], None]:
    """Register ``function()``: it calls a module's kernels once on tiny float32 inputs, so
    they are compiled or loaded from the disk cache (a decorator)."""
    _WARMERS.append(function)
    return function


KERNEL_MODULES = (
    "edgeinfer.common_sparse.fused", "edgeinfer.common_sparse.hashing",
    "edgeinfer.nlp.spatten.quant", "edgeinfer.pointcloud.functional.pointvoxel",
)
"""The modules that define kernels (imported by :func:`warm_up`)."""


def warm_up() -> None:
    """Load numba and every kernel (compiling those not in the disk cache): what the first
    real call would otherwise do. The benchmarks' peak-memory child calls it before it
    measures, as libraries (spconv's, torch's) are loaded before measuring too. Does nothing
    when kernels are off."""
    if not available():
        return
    import importlib

    for name in KERNEL_MODULES:
        importlib.import_module(name)
    for function in _WARMERS:
        function()
