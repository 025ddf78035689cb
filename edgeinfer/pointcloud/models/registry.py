"""Point-cloud models by name: ``create_model("minkunet", in_channels=4, num_classes=6)``.

Every registered model takes the same constructor arguments (those of ``UNetConfig``), so
one set of parametrised tests exercises them all.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch

from ..._names import unknown_name
from .minkunet import MinkUNet, UNetConfig
from .spvcnn import SPVCNN

__all__ = ["MODEL_INPUTS", "create_from_config", "create_model", "list_models", "registry_name"]

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
    config = UNetConfig(in_channels, num_classes, width, blocks, **overrides)
    return create_from_config(name, config)


def create_from_config(name: str, config: UNetConfig) -> torch.nn.Module:
    """Build the model ``name`` from a ready ``config`` (what checkpoint loading uses).

    Raises:
        ValueError: unknown ``name`` (the message lists close matches and all names).
    """
    if not isinstance(name, str) or name.lower() not in _MODELS:
        raise ValueError(unknown_name("point-cloud model", name, _MODELS, cutoff=0.4))
    return _MODELS[name.lower()](config)


def registry_name(model: object) -> str:
    """The registry name of ``model``'s class (``"minkunet"`` for a MinkUNet).

    Raises:
        TypeError: not an instance of a registered model (the registered ones are named).
    """
    for name, kind in _MODELS.items():
        if type(model) is kind:
            return name
    raise TypeError(f"expected a registered point-cloud model ({', '.join(list_models())}); "
                    f"got {type(model).__name__}")
