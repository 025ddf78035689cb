"""Point-cloud models by name: ``create_model("minkunet", in_channels=4, num_classes=6)``.

Every registered model takes the same constructor arguments (those of ``UNetConfig``), so
one set of parametrised tests exercises them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch

from .minkunet import MinkUNet, UNetConfig
from .spvcnn import SPVCNN

__all__ = ["MODEL_INPUTS", "create_model", "list_models"]

_MODELS: MappingProxyType[str, Callable[[UNetConfig], torch.nn.Module]] = MappingProxyType(
    {"minkunet": MinkUNet, "spvcnn": SPVCNN}
)

MODEL_INPUTS = MappingProxyType({"minkunet": "SparseTensor", "spvcnn": "PointTensor"})
"""What each model's ``forward`` takes."""


def list_models() -> list[str]:
    """Names of the registered point-cloud models, sorted."""
    return sorted(_MODELS)


def create_model(
    name: str,
    in_channels: int,
    num_classes: int,
    width: float = 1.0,
    *,
    blocks: int = 2,
    **overrides: Any,
) -> torch.nn.Module:
    """Build the model ``name`` with a ``UNetConfig(in_channels, num_classes, width, blocks,
    **overrides)`` (e.g. ``channels=(...)``); parameters freshly initialised.

    Raises:
        ValueError: unknown ``name`` (the message lists close matches and all names), or an
            invalid configuration. TypeError: an unknown keyword argument.
    """
    if not isinstance(name, str) or name.lower() not in _MODELS:
        close = difflib.get_close_matches(str(name).lower(), list(_MODELS), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(
            f"unknown point-cloud model {name!r}; {hint}available: {', '.join(list_models())}"
        )
    config = UNetConfig(in_channels, num_classes, width, blocks, **overrides)
    return _MODELS[name.lower()](config)
