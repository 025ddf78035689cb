"""Video models built by name: ``create_model("tsm_mobilenetv2", num_classes=10)``."""

from __future__ import annotations

import dataclasses

from .._names import unknown_name
from .config import VideoModelConfig
from .tsm import TSMNet

__all__ = ["create_model", "list_models", "registry_name"]

_MODELS: dict[str, str] = {
    "tsm_mobilenetv2": "mobilenetv2",
    "tsm_resnet18": "resnet18",
    "tsm_resnet50": "resnet50",
}
_OPTIONS = tuple(f.name for f in dataclasses.fields(VideoModelConfig) if f.name != "arch")


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def create_model(name: str, **kwargs: object) -> TSMNet:
    """Build a freshly initialised video classifier by name.

    Args:
        name: one of :func:`list_models`.
        **kwargs: fields of :class:`VideoModelConfig` other than ``arch``: ``num_classes``
            (required), ``n_segment``, ``shift`` (default ``"bidirectional"``; ``"causal"`` to
            stream; ``"none"`` for the TSN baseline), ``fold_div``, ``width``, ``dropout``.

    Raises:
        ValueError: unknown name (close matches are listed) or a bad config value.
        TypeError: an unknown or missing keyword, or a config value of the wrong type.
    """
    if name not in _MODELS:
        raise ValueError(unknown_name("video model", name, _MODELS, cutoff=0.6))
    unknown = sorted(set(kwargs) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"create_model({name!r}) got unknown keyword(s) {unknown}; accepted: {list(_OPTIONS)}"
        )
    if "num_classes" not in kwargs:
        raise TypeError(f"create_model({name!r}) needs num_classes=<int>, the classifier size")
    return TSMNet(VideoModelConfig(arch=_MODELS[name], **kwargs))  # type: ignore[arg-type]


def registry_name(model: TSMNet) -> str:
    """The registry name ``model`` is built as (``"tsm_mobilenetv2"`` for a MobileNetV2 TSM)."""
    return next(name for name, arch in _MODELS.items() if arch == model.config.arch)
