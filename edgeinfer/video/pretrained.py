"""Save, load and import video checkpoints: ``load_pretrained(name_or_path) -> (model, info)``.

```python
from edgeinfer.video import load_pretrained, save_checkpoint
model, info = load_pretrained("tsm", shift="causal")    # a shipped motion classifier
info.input.size, info.class_names                       # (112, 112), ("left", "right", ...)
save_checkpoint("mine.pt", model, info)
model, info = load_pretrained("mine.pt")                # the format is detected from the file
```

``info`` is a :class:`~edgeinfer.PretrainedInfo` with a :class:`~edgeinfer.FrameInput`. Files are
edgeinfer envelopes (``edgeinfer._checkpoint``) holding float16 weights; the video files of
edgeinfer 0.1 (``{"format": "edgeinfer.video/1", ...}``) still load. Other sources register in
:data:`SOURCES` (the official temporal-shift-module checkpoints: ``video.importers``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._checkpoint import (
    import_checkpoint,
    is_envelope,
    load_state_strict,
    open_envelope,
    write_envelope,
)
from .._info import FrameInput, PretrainedInfo
from .importers import detect_online, detect_tsm, load_online, load_tsm
from .registry import create_model, registry_name
from .tsm import TSMNet

__all__ = [
    "CHECKPOINT_DIR",
    "LEGACY_FORMAT",
    "PRETRAINED",
    "PRETRAINED_KINDS",
    "SOURCES",
    "load_checkpoint",
    "load_pretrained",
    "save_checkpoint",
]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
LEGACY_FORMAT = "edgeinfer.video/1"
PRETRAINED_KINDS: dict[str, str] = {"tsm": "motion_tsm.pt", "tsn": "motion_tsn.pt"}
PRETRAINED: Mapping[str, Path] = {k: CHECKPOINT_DIR / v for k, v in PRETRAINED_KINDS.items()}
"""Shipped checkpoints by name: the causal TSM motion classifier and its TSN twin."""
TASK = "video classification"
_HINT = "train one with scripts/train_video.py or pass the right path"
_KIND = "video checkpoint"


def save_checkpoint(
    path: str | os.PathLike[str], model: TSMNet, info: PretrainedInfo | None = None, *,
    class_names: tuple[str, ...] | None = None, input_size: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (float16 weights), its config and its info to ``path`` atomically.

    Pass ``info`` (a :class:`PretrainedInfo`), or ``class_names`` and ``input_size`` (the
    square side it was trained at) with optional ``metadata``.

    Raises:
        TypeError: ``model`` not a TSMNet. ValueError: class names not matching the head, or
            neither ``info`` nor ``class_names``/``input_size``.
    """
    if not isinstance(model, TSMNet):
        raise TypeError(f"model must be a TSMNet; got {type(model).__name__}")
    if info is None:
        if class_names is None or input_size is None:
            raise ValueError("save_checkpoint needs info=PretrainedInfo(...) or class_names= "
                             "and input_size=")  # fmt: skip
        info = PretrainedInfo("video", registry_name(model), TASK, tuple(class_names),
                              FrameInput((int(input_size), int(input_size))),
                              metadata=dict(metadata or {}))  # fmt: skip
    if len(info.class_names) != model.config.num_classes:
        raise ValueError(f"{len(info.class_names)} class names for a {model.config.num_classes}-"
                         "class model; pass one name per output")
    state = {key: value.half() if value.is_floating_point() else value
             for key, value in model.state_dict().items()}
    name = registry_name(model)
    return write_envelope(path, engine="video", model=name,
                          config=dataclasses.asdict(model.config), state_dict=state,
                          info=info.replace(model=name, source="", format=""))  # fmt: skip


def _build(name: str, config: Mapping[str, Any], state: Mapping[str, Any], source: Path,
           shift: str | None) -> TSMNet:
    values = {k: v for k, v in config.items() if k != "arch"}
    if shift is not None:
        values["shift"] = shift
    for key in ("input_mean", "input_std"):
        if key in values:
            values[key] = tuple(values[key])
    try:
        model = create_model(name, **values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: the saved config {dict(config)} does not build a "
                         f"{name!r}: {error}") from error  # fmt: skip
    state = {key: value.float() if value.is_floating_point() else value
             for key, value in state.items()}
    load_state_strict(model, state, source, f"a {name} of the saved config")
    return model.eval()


def _from_envelope(payload: Any, source: Path, shift: str | None) -> tuple[TSMNet, PretrainedInfo]:
    envelope = open_envelope(payload, source, "video")
    model = _build(envelope.model, envelope.config, envelope.state_dict, source, shift)
    info = envelope.info or PretrainedInfo("video", envelope.model, TASK, (),
                                           FrameInput((224, 224)))
    return model, info.replace(source=str(source), format="edgeinfer/1")


def _is_legacy(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == LEGACY_FORMAT


def _from_legacy(payload: Any, source: Path, shift: str | None) -> tuple[TSMNet, PretrainedInfo]:
    missing = [k for k in ("model", "config", "class_names", "input_size", "state_dict")
               if k not in payload]
    if missing:
        raise ValueError(f"{source}: damaged video checkpoint, missing {missing}; re-save it")
    model = _build(payload["model"], payload["config"], payload["state_dict"], source, shift)
    side = int(payload["input_size"])
    info = PretrainedInfo("video", payload["model"], TASK, tuple(payload["class_names"]),
                          FrameInput((side, side)), str(source), LEGACY_FORMAT,
                          dict(payload.get("metadata", {})))  # fmt: skip
    return model, info


Importer = tuple[Callable[[Any], bool],
                 Callable[[Any, Path, str | None], tuple[TSMNet, PretrainedInfo]]]
SOURCES: dict[str, Importer] = {
    "edgeinfer": (lambda p: is_envelope(p) or _is_legacy(p),
                  lambda p, s, shift: (_from_legacy if _is_legacy(p) else _from_envelope)(
                      p, s, shift)),
    "tsm": (detect_tsm, load_tsm),
    "tsm-online": (detect_online, load_online),
}
"""``source name -> (detect(payload), load(payload, path, shift))``, tried in order."""


def load_pretrained(
    name_or_path: str | os.PathLike[str] = "tsm", *, source: str | None = None,
    shift: str | None = None,
) -> tuple[TSMNet, PretrainedInfo]:
    """A video classifier (eval mode) and its :class:`PretrainedInfo`.

    Args:
        name_or_path: a shipped name (:data:`PRETRAINED`: ``"tsm"``, ``"tsn"``) or a file.
        source: force a format (one of :data:`SOURCES`); default: detected from the file.
        shift: rebuild with another shift mode (``"causal"`` to stream); the parameters do
            not depend on it.

    Raises:
        FileNotFoundError: neither a shipped name nor a file (close names are listed).
        ValueError: a damaged file, a file of another engine or format version, a format no
            importer recognises, or weights that do not fit (names keys and both shapes).
    """
    return import_checkpoint(name_or_path, source=source, sources=SOURCES, shipped=PRETRAINED,
                             what=_KIND, hint=_HINT, options=(shift,))


def load_checkpoint(
    path: str | os.PathLike[str], *, shift: str | None = None
) -> tuple[TSMNet, PretrainedInfo]:
    """``load_pretrained(path, source="edgeinfer", shift=shift)``: a :func:`save_checkpoint`
    file."""
    return load_pretrained(Path(path), source="edgeinfer", shift=shift)
