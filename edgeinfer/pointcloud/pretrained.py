"""Save, load and import point-cloud checkpoints: ``load_pretrained(name_or_path)``.

```python
from edgeinfer.pointcloud import load_pretrained, predict_points, save_checkpoint
model, info = load_pretrained()                       # the shipped MinkUNet ("minkunet-scenes")
labels = predict_points(model, scan.points, scan.intensity, info.input.voxel_size)
save_checkpoint("mine.pt", model, info)               # every registered model, SPVCNN included
model, info = load_pretrained("mine.pt")              # the format is detected from the file
```

``info`` is a :class:`~edgeinfer.PretrainedInfo` with a :class:`~edgeinfer.PointInput`. Files
are edgeinfer envelopes (``edgeinfer._checkpoint``); the segmenter files of edgeinfer 0.1
(``{"meta", "state_dict"}``) still load. Other sources register in :data:`SOURCES`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .._checkpoint import (
    import_checkpoint,
    is_envelope,
    load_state_strict,
    open_envelope,
    write_envelope,
)
from .._info import PointInput, PretrainedInfo
from .importers import detect_spconv, detect_torchsparse, load_spconv, load_torchsparse
from .models import UNetConfig
from .models.registry import create_from_config, registry_name

__all__ = [
    "FEATURES",
    "LEGACY_FORMAT",
    "PRETRAINED",
    "PRETRAINED_PATH",
    "SOURCES",
    "load_checkpoint",
    "load_pretrained",
    "save_checkpoint",
]

FEATURES = ("intensity", "z / 2 m", "range / 50 m", "1")
"""The feature columns of the shipped segmenter (``train.voxel_features``)."""
LEGACY_FORMAT = "edgeinfer.pointcloud.segmenter/1"
PRETRAINED_PATH = Path(__file__).parent / "checkpoints" / "minkunet_scenes.pt"
PRETRAINED: Mapping[str, Path] = {"minkunet-scenes": PRETRAINED_PATH}
"""Shipped checkpoints by name."""
_TASK = "semantic segmentation"
_HINT = ("train one with `python scripts/train_pointcloud.py --out PATH` or load the shipped "
         "one with load_pretrained()")
_KIND = "point-cloud checkpoint"


def _info_from(model: torch.nn.Module, info: PretrainedInfo | Mapping[str, Any]) -> PretrainedInfo:
    if isinstance(info, PretrainedInfo):
        return info.replace(model=registry_name(model))
    if not isinstance(info, Mapping):
        raise TypeError(f"info must be a PretrainedInfo (or a dict with class_names and "
                        f"voxel_size); got {type(info).__name__}")  # fmt: skip
    missing = [key for key in ("class_names", "voxel_size") if key not in info]
    if missing:
        raise ValueError(f"save_checkpoint info must hold {missing}; got keys {sorted(info)}")
    spec = PointInput(info["voxel_size"], tuple(info.get("features", FEATURES)),
                      info.get("quantize", "floor"))
    rest = {k: v for k, v in info.items() if k not in ("class_names", "voxel_size", "features")}
    return PretrainedInfo("pointcloud", registry_name(model), _TASK, tuple(info["class_names"]),
                          spec, metadata=rest)


def save_checkpoint(
    path: str | os.PathLike[str], model: torch.nn.Module,
    info: PretrainedInfo | Mapping[str, Any],
) -> Path:
    """Write any registered point-cloud ``model`` (MinkUNet, SPVCNN), its config and ``info``
    to ``path`` atomically; returns the path.

    Args:
        info: a :class:`PretrainedInfo`, or a dict with ``class_names`` and ``voxel_size``
            (optionally ``features``, ``quantize``; other keys become ``info.metadata``).

    Raises:
        TypeError: ``model`` is not a registered point-cloud model (names them).
        ValueError: ``info`` lacks a field, or its class names do not match the head.
    """
    full = _info_from(model, info)
    classes = model.config.num_classes
    if len(full.class_names) != classes:
        raise ValueError(f"{len(full.class_names)} class names for a {classes}-class model; "
                         "pass one name per output")  # fmt: skip
    config = asdict(model.config)
    config["channels"] = list(config["channels"])
    return write_envelope(path, engine="pointcloud", model=full.model, config=config,
                          state_dict=model.state_dict(), info=full.replace(source="", format=""))


def _build(name: str, config: Mapping[str, Any], state: Mapping[str, Any],
           source: Path) -> torch.nn.Module:
    values = dict(config)
    values["channels"] = tuple(values.get("channels", ()))
    try:
        model = create_from_config(name, UNetConfig(**values))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: the saved config {dict(config)} does not build a "
                         f"{name!r}: {error}") from error  # fmt: skip
    load_state_strict(model, state, source, f"a {name} of the saved config")
    return model.eval()


def _no_voxel_size(voxel_size: float | None, source: Path, features: Any = None) -> None:
    for name, value in (("voxel_size", voxel_size), ("features", features)):
        if value is not None:
            raise ValueError(f"{source} records its own {name.replace('_', ' ')}; {name}= is "
                             f"for imported files that do not (got {name}={value!r})")


def _from_envelope(payload: Any, source: Path, voxel_size: float | None = None,
                   features: Any = None) -> tuple[torch.nn.Module, PretrainedInfo]:
    _no_voxel_size(voxel_size, source, features)
    envelope = open_envelope(payload, source, "pointcloud")
    model = _build(envelope.model, envelope.config, envelope.state_dict, source)
    info = envelope.info or PretrainedInfo("pointcloud", envelope.model, _TASK, (),
                                           PointInput(1.0, FEATURES))
    return model, info.replace(source=str(source), format="edgeinfer/1")


def _is_legacy(payload: Any) -> bool:
    return (isinstance(payload, dict) and {"meta", "state_dict"} <= set(payload)
            and isinstance(payload["meta"], dict)
            and payload["meta"].get("format") == LEGACY_FORMAT)


def _from_legacy(payload: Any, source: Path, voxel_size: float | None = None,
                 features: Any = None) -> tuple[torch.nn.Module, PretrainedInfo]:
    _no_voxel_size(voxel_size, source, features)
    meta = payload["meta"]
    missing = [key for key in ("model", "config", "class_names", "voxel_size") if key not in meta]
    if missing:
        raise ValueError(f"{source}: checkpoint meta must hold {missing}; re-save it")
    model = _build(meta["model"], meta["config"], payload["state_dict"], source)
    rest = {k: v for k, v in meta.items()
            if k not in ("format", "model", "config", "class_names", "voxel_size", "features")}
    info = PretrainedInfo("pointcloud", meta["model"], _TASK, tuple(meta["class_names"]),
                          PointInput(meta["voxel_size"], tuple(meta.get("features", FEATURES))),
                          str(source), LEGACY_FORMAT, rest)  # fmt: skip
    return model, info


Importer = tuple[Callable[[Any], bool], Callable[..., tuple[torch.nn.Module, PretrainedInfo]]]
SOURCES: dict[str, Importer] = {
    "edgeinfer": (lambda p: is_envelope(p) or _is_legacy(p),
                  lambda p, s, *o: _from_legacy(p, s, *o) if _is_legacy(p) else
                  _from_envelope(p, s, *o)),
    "torchsparse": (detect_torchsparse, load_torchsparse),
    "spconv": (detect_spconv, load_spconv),
}
"""``source name -> (detect(payload), load(payload, path, voxel_size, features))``, tried in
order by autodetection (see ``pointcloud.importers`` for the TorchSparse/SPVNAS and spconv
layouts)."""


def load_pretrained(
    name_or_path: str | os.PathLike[str] = "minkunet-scenes", *, source: str | None = None,
    voxel_size: float | None = None, features: Sequence[str] | None = None,
) -> tuple[torch.nn.Module, PretrainedInfo]:
    """A point-cloud model (eval mode) and its :class:`PretrainedInfo`.

    Args:
        name_or_path: a shipped name (:data:`PRETRAINED`) or a checkpoint file: an edgeinfer
            file, an SPVNAS/TorchSparse MinkUNet or a spconv MinkUNet in edgeinfer's layout.
        source: force a format (one of :data:`SOURCES`); default: detected from the file.
        voxel_size: the voxel size (m) an imported file was trained with, recorded in
            ``info.input`` (TorchSparse and spconv files do not say; default 0.05). An
            edgeinfer file records its own and refuses this argument.
        features: the feature columns an imported file was trained on (``train.
            FEATURE_COLUMNS`` names the ones ``voxelize_scan`` computes); default SPVNAS's for
            TorchSparse files, placeholders for spconv files. Refused for edgeinfer files.

    Raises:
        FileNotFoundError: neither a shipped name nor a file (close names are listed).
        ValueError: a damaged file, a file of another engine or format version, a format no
            importer recognises, or weights that do not fit (names keys and both shapes).
    """
    return import_checkpoint(name_or_path, source=source, sources=SOURCES, shipped=PRETRAINED,
                             what=_KIND, hint=_HINT, options=(voxel_size, features))


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, PretrainedInfo]:
    """``load_pretrained(path, source="edgeinfer")``: a file written by :func:`save_checkpoint`."""
    return load_pretrained(Path(path), source="edgeinfer")
