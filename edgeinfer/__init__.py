"""edgeinfer: task-specific efficient inference engines for edge and mobile CPUs.

Three engines share one sparse core and one benchmark harness:

- ``edgeinfer.pointcloud``: spatial sparsity (sparse tensors, sparse convolution);
- ``edgeinfer.video``: temporal redundancy (temporal shift, frame and pixel skipping);
- ``edgeinfer.nlp``: token redundancy (token/head pruning, sub-network search);
- ``edgeinfer.common_sparse``: the core they share (coordinates, kernel maps, row selection);
- ``edgeinfer.bench``: the mobile latency benchmark harness.

``import edgeinfer`` is cheap: it imports no dependency, builds no model and probes no
hardware. Sub-packages load on first attribute access (``edgeinfer.bench``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "bench",
    "common_sparse",
    "datasets",
    "nlp",
    "pointcloud",
    "video",
]

_SUBPACKAGES = frozenset({"bench", "common_sparse", "datasets", "nlp", "pointcloud", "video"})


def __getattr__(name: str) -> ModuleType:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
