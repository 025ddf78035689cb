"""What a loaded model expects and where it came from: one frozen ``PretrainedInfo``, all engines.

``load_pretrained`` of every engine returns ``(model, info)``. ``info.input`` is the engine's input
spec — :class:`PointInput` (voxel size, feature layout, how points become voxels),
:class:`FrameInput` (frame size, colour order, normalisation) or :class:`TextInput` (tokenizer,
max length, pooling) — so a pipeline prepares data the way the checkpoint was trained, whatever
format it was read from. Plain dataclasses: no torch here, so ``import edgeinfer`` stays light.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ENGINES", "POOLINGS", "QUANTIZE_MODES", "FrameInput", "PointInput", "PretrainedInfo",
           "TextInput"]

ENGINES: tuple[str, ...] = ("pointcloud", "video", "nlp")
QUANTIZE_MODES: tuple[str, ...] = ("floor", "round_shift")
POOLINGS: tuple[str, ...] = ("mean", "cls")


def _positive_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PointInput:
    """How a point-cloud checkpoint reads a scan.

    Attributes:
        voxel_size: grid pitch in metres.
        features: the per-voxel feature columns in order, e.g. ``("x", "y", "z", "intensity")``.
        quantize: ``"floor"`` (edgeinfer: ``floor(xyz / voxel)``) or ``"round_shift"`` (SPVNAS:
            ``round(xyz / voxel)`` shifted to a zero minimum), see ``sparse_quantize(mode=)``.
    """

    voxel_size: float
    features: tuple[str, ...]
    quantize: str = "floor"

    def __post_init__(self) -> None:
        object.__setattr__(self, "voxel_size", _positive_number(self.voxel_size, "voxel_size"))
        object.__setattr__(self, "features", tuple(str(name) for name in self.features))
        if self.quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize must be one of {list(QUANTIZE_MODES)}; "
                             f"got {self.quantize!r}")  # fmt: skip


@dataclass(frozen=True)
class FrameInput:
    """How a video checkpoint reads frames: float ``(3, H, W)`` in ``[0, 1]``, in
    ``colour_order``, then ``(frame - mean) / std`` per channel (the model applies this itself).

    Attributes:
        size: ``(height, width)`` the model was trained at.
        colour_order: ``"RGB"`` or ``"BGR"``.
        mean / std: per-channel normalisation of ``[0, 1]`` frames (``(0,0,0)``/``(1,1,1)``: none).
    """

    size: tuple[int, int]
    colour_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        size = tuple(self.size)
        if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                     for s in size):
            raise ValueError(f"size must be (height, width) of positive ints; got {self.size!r}")
        object.__setattr__(self, "size", size)
        if self.colour_order not in ("RGB", "BGR"):
            raise ValueError(f"colour_order must be 'RGB' or 'BGR'; got {self.colour_order!r}")
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3 or not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name} must be 3 finite floats; got {getattr(self, name)!r}")
            object.__setattr__(self, name, values)
        if min(self.std) <= 0:
            raise ValueError(f"std must be > 0 per channel; got {self.std}")


@dataclass(frozen=True)
class TextInput:
    """How a text checkpoint reads text: its tokenizer (a folder or name), the tokens kept per
    text, and how token vectors become one sentence vector (``pooling``, then ``normalize``)."""

    tokenizer: str
    max_length: int
    pooling: str = "mean"
    normalize: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) \
                or self.max_length < 2:
            raise ValueError(f"max_length must be an int >= 2; got {self.max_length!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {self.pooling!r}")


_INPUTS = {"points": PointInput, "frames": FrameInput, "text": TextInput}


@dataclass(frozen=True)
class PretrainedInfo:
    """Everything ``load_pretrained`` knows about a model besides its weights.

    Attributes:
        engine: ``"pointcloud"``, ``"video"`` or ``"nlp"``.
        model: the registry name it was built as (``"minkunet"``, ``"tsm_mobilenetv2"``, ...).
        task: what it outputs, in words (``"semantic segmentation"``).
        class_names: one name per output class (empty for an embedding model).
        input: the input spec (see the module docstring).
        source: where it came from: a shipped name or the file / folder it was read from.
        format: the format it was read from (``"edgeinfer/1"``, ``"torchsparse"``, ...).
        metadata: anything else the checkpoint recorded (training settings, scores), read-only.
    """

    engine: str
    model: str
    task: str
    class_names: tuple[str, ...]
    input: PointInput | FrameInput | TextInput
    source: str = ""
    format: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}; got {self.engine!r}")
        if not isinstance(self.input, tuple(_INPUTS.values())):
            raise TypeError("input must be a PointInput, FrameInput or TextInput; "
                            f"got {type(self.input).__name__}")  # fmt: skip
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def replace(self, **changes: Any) -> PretrainedInfo:
        """A copy with ``changes`` applied (``info.replace(source=str(path))``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (what a ``weights_only`` checkpoint can hold)."""
        kind = next(k for k, t in _INPUTS.items() if isinstance(self.input, t))
        return {"engine": self.engine, "model": self.model, "task": self.task,
                "class_names": list(self.class_names), "input_kind": kind,
                "input": asdict(self.input), "source": self.source, "format": self.format,
                "metadata": dict(self.metadata)}  # fmt: skip

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PretrainedInfo:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValueError: a missing field or an unknown input kind.
        """
        missing = sorted({"engine", "model", "task", "class_names", "input_kind", "input"}
                         - set(values))
        if missing or values.get("input_kind") not in _INPUTS:
            raise ValueError(f"info lacks {missing} or has input kind "
                             f"{values.get('input_kind')!r} (expected one of {list(_INPUTS)})")
        spec = _INPUTS[values["input_kind"]](**values["input"])
        return cls(values["engine"], values["model"], values["task"],
                   tuple(values["class_names"]), spec, str(values.get("source", "")),
                   str(values.get("format", "")), dict(values.get("metadata", {})))  # fmt: skip
