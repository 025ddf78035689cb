"""The configuration of a TSM / TSN video classifier, checked when built."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ARCHS", "MODEL_SHIFTS", "VideoModelConfig"]

ARCHS: tuple[str, ...] = ("mobilenetv2", "resnet18", "resnet50")
MODEL_SHIFTS: tuple[str, ...] = ("bidirectional", "causal", "none")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class VideoModelConfig:
    """What a TSM/TSN model is: backbone, head size, clip length and where time mixes.

    Attributes:
        arch: backbone, one of :data:`ARCHS`.
        num_classes: classifier outputs.
        n_segment: frames per clip ``T`` in the offline forward ``(N*T, 3, H, W)``.
        shift: ``"bidirectional"`` (offline TSM), ``"causal"`` (online TSM, streamable) or
            ``"none"`` (TSN: same parameters and MACs, no temporal mixing).
        fold_div: each shifted block moves ``C // fold_div`` channels per direction.
        width: channel multiplier of the backbone (1.0 = the published widths).
        dropout: dropout probability before the classifier.
        input_mean / input_std: per-channel normalisation the model applies to its ``[0, 1]``
            frames before the first layer (``(frame - mean) / std``; the defaults: none). An
            imported ImageNet-trained checkpoint carries ImageNet's.

    Raises:
        TypeError: a field of the wrong type.
        ValueError: a field out of range or not among the supported names.
    """

    arch: str
    num_classes: int
    n_segment: int = 8
    shift: str = "bidirectional"
    fold_div: int = 8
    width: float = 1.0
    dropout: float = 0.5
    input_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    input_std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {list(ARCHS)}; got {self.arch!r}")
        if self.shift not in MODEL_SHIFTS:
            raise ValueError(
                f"shift must be one of {list(MODEL_SHIFTS)} ('none' is the TSN baseline); "
                f"got {self.shift!r}"
            )
        for name in ("num_classes", "n_segment", "fold_div"):
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        if self.shift == "bidirectional" and self.fold_div < 2:
            raise ValueError(
                f"fold_div must be >= 2 with shift='bidirectional' (two folds move); "
                f"got {self.fold_div}"
            )
        for name in ("width", "dropout"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise TypeError(f"{name} must be a finite float; got {value!r}")
        if self.width <= 0:
            raise ValueError(f"width must be > 0 (1.0 = published widths); got {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}")
        for name in ("input_mean", "input_std"):
            values = getattr(self, name)
            if not isinstance(values, (tuple, list)) or len(values) != 3 \
                    or not all(_is_number(v) and math.isfinite(v) for v in values):
                raise ValueError(f"{name} must be 3 finite floats (R, G, B); got {values!r}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if min(self.input_std) <= 0:
            raise ValueError(f"input_std must be > 0 per channel; got {self.input_std}")

    @property
    def normalised(self) -> bool:
        """True when the model shifts or scales its input frames."""
        return self.input_mean != (0.0, 0.0, 0.0) or self.input_std != (1.0, 1.0, 1.0)
