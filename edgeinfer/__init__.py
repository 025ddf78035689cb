"""edgeinfer: task-specific efficient inference engines for edge and mobile CPUs.

Three engines share one sparse core and one benchmark harness:

- ``edgeinfer.pointcloud``: spatial sparsity (sparse tensors, sparse convolution);
- ``edgeinfer.video``: temporal redundancy (temporal shift, frame and pixel skipping);
- ``edgeinfer.nlp``: token redundancy (token/head pruning, sub-network search);
- ``edgeinfer.common_sparse``: the core they share (coordinates, kernel maps, row selection);
- ``edgeinfer.bench``: the mobile latency benchmark harness.

``import edgeinfer`` is cheap: it imports no dependency, builds no model and probes no
hardware. Sub-packages load on first attribute access (``edgeinfer.bench``).
``PretrainedInfo`` (with ``PointInput`` / ``FrameInput`` / ``TextInput``) is what every engine's
``load_pretrained`` returns beside the model.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = [
    "FrameInput",
    "PointInput",
    "PretrainedInfo",
    "TextInput",
    "__version__",
    "batch",
    "bench",
    "common_sparse",
    "datasets",
    "nlp",
    "pointcloud",
    "video",
]

_SUBPACKAGES = frozenset(
    {"batch", "bench", "common_sparse", "datasets", "nlp", "pointcloud", "video"}
)


_INFO = frozenset({"FrameInput", "PointInput", "PretrainedInfo", "TextInput"})


def __getattr__(name: str) -> object:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _INFO:  # plain dataclasses, no dependency
        return getattr(importlib.import_module(f"{__name__}._info"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
