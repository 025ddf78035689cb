"""The one checkpoint envelope every engine writes and reads, with errors that say what to do.

An edgeinfer checkpoint is a ``torch.save`` dict::

    {"edgeinfer_checkpoint": ENVELOPE_VERSION, "engine": "video", "model": "tsm_mobilenetv2",
     "config": {...plain values...}, "state_dict": {...tensors...},
     "info": PretrainedInfo.to_dict(), "extra": {...}}

``extra`` holds what only one kind of file needs (an optimizer state, a training step). Engines
never import each other, so the envelope lives at the package root, below all of them. Files are
read with ``weights_only=True`` (tensors and plain values, never pickled code) and written
atomically (a partial file never replaces a good one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._info import ENGINES, PretrainedInfo

__all__ = [
    "ENVELOPE_VERSION",
    "Envelope",
    "import_checkpoint",
    "is_envelope",
    "load_state_strict",
    "open_envelope",
    "read_checkpoint_file",
    "state_dict_mismatch",
    "write_envelope",
]

ENVELOPE_VERSION = 1
_KEY = "edgeinfer_checkpoint"
_FIELDS = ("engine", "model", "config", "state_dict", "info", "extra")
_LOADERS = {
    "pointcloud": "edgeinfer.pointcloud.load_pretrained(path)",
    "video": "edgeinfer.video.load_pretrained(path)",
    "nlp": "the edgeinfer.nlp loader named by its model",
}


@dataclass(frozen=True)
class Envelope:
    """One checkpoint's contents: ``engine``, registry ``model`` name, its ``config`` (plain
    values), ``state_dict``, ``info`` and the file-kind specific ``extra``."""

    engine: str
    model: str
    config: dict[str, Any]
    state_dict: dict[str, Any]
    info: PretrainedInfo | None
    extra: dict[str, Any]


def write_envelope(
    path: str | os.PathLike[str], *, engine: str, model: str, config: Mapping[str, Any],
    state_dict: Mapping[str, Any], info: PretrainedInfo | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write one envelope to ``path`` atomically (parent folders made); returns the path.

    Raises:
        ValueError: an unknown ``engine`` or an ``info`` of another engine.
    """
    import torch

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}; got {engine!r}")
    if info is not None and info.engine != engine:
        raise ValueError(f"info is for the {info.engine} engine, not {engine}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        _KEY: ENVELOPE_VERSION, "engine": engine, "model": str(model), "config": dict(config),
        "state_dict": {name: tensor.detach().clone() if isinstance(tensor, torch.Tensor)
                       else tensor for name, tensor in state_dict.items()},
        "info": None if info is None else info.to_dict(), "extra": dict(extra or {}),
    }  # fmt: skip
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        torch.save(payload, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def is_envelope(payload: object) -> bool:
    """True when ``payload`` (a loaded file) is an edgeinfer envelope of any version."""
    return isinstance(payload, dict) and _KEY in payload


def open_envelope(payload: object, source: Path, engine: str, model: str | None = None
                  ) -> Envelope:
    """Check a loaded ``payload`` is an envelope of this ``engine`` (and ``model`` when given).

    Raises:
        ValueError: not an envelope, another format version, another engine or model, or a
            damaged envelope; each names what was expected and what the file holds.
    """
    if not is_envelope(payload):
        got = sorted(map(str, payload))[:8] if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{source} is not an edgeinfer checkpoint (no {_KEY!r} entry; holds "
                         f"{got}); write it with the engine's save_checkpoint")  # fmt: skip
    version = payload[_KEY]
    if version != ENVELOPE_VERSION:
        raise ValueError(f"{source} is an edgeinfer checkpoint of format version {version!r}; "
                         f"this edgeinfer reads version {ENVELOPE_VERSION}: use the edgeinfer "
                         "that wrote it, or re-save it")  # fmt: skip
    missing = [key for key in _FIELDS if key not in payload]
    if missing:
        raise ValueError(f"{source}: damaged edgeinfer checkpoint, missing {missing}")
    if payload["engine"] != engine:
        other = payload["engine"]
        raise ValueError(f"{source} is a {other} checkpoint ({payload['model']!r}), not a "
                         f"{engine} one; load it with {_LOADERS.get(other, repr(other))}")
    if model is not None and payload["model"] != model:
        raise ValueError(f"{source} holds a {payload['model']!r}, not a {model!r}")
    info = None if payload["info"] is None else PretrainedInfo.from_dict(payload["info"])
    return Envelope(engine, str(payload["model"]), dict(payload["config"]),
                    dict(payload["state_dict"]), info, dict(payload["extra"]))


def import_checkpoint(
    name_or_path: str | os.PathLike[str], *, source: str | None,
    sources: Mapping[str, tuple[Callable[[Any], bool], Callable[..., tuple[Any, PretrainedInfo]]]],
    shipped: Mapping[str, Path], what: str, hint: str, options: tuple[Any, ...] = (),
) -> tuple[Any, PretrainedInfo]:
    """The engines' ``load_pretrained`` dispatch: a shipped name or a file, read once, then the
    first importer of ``sources`` whose ``detect(payload)`` says yes (or the forced ``source``)
    builds ``(model, info)`` with ``load(payload, path, *options)``. ``what`` names the engine's
    files in errors ("point-cloud checkpoint").

    Raises:
        FileNotFoundError: neither a shipped name nor a file (close names are listed).
        ValueError: an unknown ``source``, an unreadable file, or one no importer recognises.
    """
    from ._names import unknown_name

    if source is not None and source not in sources:
        raise ValueError(unknown_name(f"{what} source", source, sources))
    if isinstance(name_or_path, str) and name_or_path in shipped:
        path, shipped_name = shipped[name_or_path], name_or_path
    else:
        path, shipped_name = Path(name_or_path), None
        looks_like_path = not isinstance(name_or_path, str) or bool(path.suffix) \
            or os.sep in name_or_path
        if not path.is_file() and looks_like_path:
            raise FileNotFoundError(f"no {what} at {path}; {hint}")
        if not path.is_file():
            raise FileNotFoundError(unknown_name(
                f"{what} (not a shipped name, no such file)", name_or_path, shipped,
                cutoff=0.6, fix=hint))
    payload = read_checkpoint_file(path, what, hint)
    for name in [source] if source is not None else list(sources):
        detect, load = sources[name]
        if source is not None or detect(payload):
            model, info = load(payload, path, *options)
            return model, info.replace(source=shipped_name) if shipped_name else info
    got = sorted(map(str, payload))[:8] if isinstance(payload, dict) else type(payload).__name__
    raise ValueError(f"{path} is not a {what} any importer knows (holds {got}); known sources: "
                     f"{', '.join(sources)}; pass source= to force one")


def read_checkpoint_file(path: Path, kind: str, hint: str) -> Any:
    """The object stored at ``path``; ``kind`` names it in errors ("video checkpoint").

    Raises:
        FileNotFoundError: no file at ``path`` (the message ends with ``hint``).
        ValueError: the file cannot be read by ``torch.load`` (damaged, or not a checkpoint).
    """
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"no {kind} at {path}; {hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise ValueError(
            f"{path} is not a readable {kind} (corrupt or not written by save_checkpoint: "
            f"{type(error).__name__}: {error}); {hint}"
        ) from error


def state_dict_mismatch(expected: Mapping[str, Any], state: Mapping[str, Any]) -> str | None:
    """How ``state`` differs from a model's ``expected`` state dict, or ``None`` if it fits.

    Names the first five missing, unexpected and wrongly shaped keys (with the file's and the
    model's shapes) and how many of each.
    """
    def shape(value: Any) -> tuple[int, ...] | str:
        found = getattr(value, "shape", None)
        return tuple(found) if found is not None else type(value).__name__

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(state) & set(expected)
                      if shape(state[k]) != shape(expected[k]))
    if not (missing or unexpected or reshaped):
        return None
    shapes = [f"{k}: file {shape(state[k])} vs model {shape(expected[k])}" for k in reshaped[:5]]
    return (f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}, other shapes "
            f"{shapes} ({len(missing)}/{len(unexpected)}/{len(reshaped)} in all)")


def load_state_strict(model: Any, state: Mapping[str, Any], source: object, what: str) -> None:
    """Load ``state`` into ``model`` only when every key and shape fits; nothing half-loaded.

    Raises:
        ValueError: names ``source``, ``what`` it should hold and the mismatched keys/shapes.
    """
    mismatch = state_dict_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise ValueError(f"{source}: the weights do not fit {what}: {mismatch}")
    model.load_state_dict(dict(state), strict=True)
