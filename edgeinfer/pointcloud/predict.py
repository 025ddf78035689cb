"""``Segmenter``: points in, a class and a score for every input point out.

The batch unit of the point-cloud engine: voxelise the scan the way the checkpoint was
trained (``info.input``), run the network once, and carry each voxel's prediction back to every
point that fell into it. The same object works in a loop, a Dask task or Ray Data's
``map_batches`` (see ``edgeinfer._predictor``)::

    segmenter = Segmenter("minkunet-scenes")
    labels, scores = segmenter.segment(points, intensity)    # (N,) int32, (N,) float32
    segmenter({"points": [a, b], "intensity": [ia, ib]})      # {"labels": [...], "scores": [...]}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._predictor import Predictor

__all__ = ["Segmenter"]


def _as_points(points: object) -> np.ndarray:
    array = np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"points must be an (N, 3) array of x, y, z; got shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise TypeError(f"points must hold numbers; got dtype {array.dtype}")
    return array


def _as_intensity(intensity: object, count: int) -> np.ndarray | None:
    if intensity is None:
        return None
    array = np.asarray(intensity)
    if array.shape != (count,) or array.dtype.kind not in "fiu":
        raise ValueError(f"intensity must be None or a numeric ({count},) array (one per "
                         f"point); got {array.dtype} of shape {array.shape}")
    return array.astype(np.float32, copy=False)


class Segmenter(Predictor):
    """Per-point semantic segmentation with a point-cloud checkpoint.

    Args:
        model: what ``pointcloud.load_pretrained`` accepts: a shipped name or a checkpoint
            file (edgeinfer, TorchSparse/SPVNAS, spconv).
        voxel_size / features / source: passed to ``load_pretrained`` (for imported files
            that do not record them).
        threads: torch threads per call (``None``: the process's setting).

    Points whose coordinates or intensity are not finite are not segmented: they get label
    ``-1`` and score NaN (nothing is dropped: outputs keep one row per input point).

    Raises:
        ValueError: a bad ``threads``; at the first call, the errors of ``load_pretrained``,
            or a checkpoint reading features the engine cannot compute from points.
    """

    engine = "pointcloud"

    def __init__(
        self, model: str | os.PathLike[str] = "minkunet-scenes", *,
        voxel_size: float | None = None, features: Sequence[str] | None = None,
        source: str | None = None, threads: int | None = None,
    ) -> None:
        super().__init__(threads)
        self.model = os.fspath(model)
        self.voxel_size = voxel_size
        self.features = None if features is None else tuple(str(f) for f in features)
        self.source = source

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "model": self.model, "voxel_size": self.voxel_size,
                "features": self.features, "source": self.source}  # fmt: skip

    def _load(self):
        from .pretrained import load_pretrained
        from .train import FEATURE_COLUMNS

        options = {"voxel_size": self.voxel_size, "features": self.features,
                   "source": self.source}  # fmt: skip
        model, info = load_pretrained(self.model, **{k: v for k, v in options.items()
                                                     if v is not None})  # fmt: skip
        unknown = [name for name in info.input.features if name not in FEATURE_COLUMNS]
        if unknown:
            raise ValueError(f"model {self.model!r} reads features {list(info.input.features)};"
                             f" the engine cannot compute {unknown} from points (known: "
                             f"{list(FEATURE_COLUMNS)}); pass features=")  # fmt: skip
        return model.eval(), info

    def segment(
        self, points: np.ndarray, intensity: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(labels (N,) int32, scores (N,) float32)`` for ``points (N, 3)`` (and optional
        ``intensity (N,)`` in [0, 1]): each point's voxel's class and its softmax probability.

        Raises:
            TypeError / ValueError: ``points`` not numeric ``(N, 3)``, ``intensity`` not
                ``(N,)``, or the errors of voxelisation (coordinates beyond the grid's range).
        """
        from .quantize import sparse_collate
        from .train import voxelize_scan

        points = _as_points(points)
        intensity = _as_intensity(intensity, len(points))
        valid = np.isfinite(points).all(axis=1)
        if intensity is not None:
            valid &= np.isfinite(intensity)
        labels = np.full(len(points), -1, dtype=np.int32)
        scores = np.full(len(points), np.nan, dtype=np.float32)
        if not valid.any():
            return labels, scores
        kept = points[valid].astype(np.float32, copy=False)
        kept_intensity = None if intensity is None else np.clip(intensity[valid], 0.0, 1.0)
        with self._running() as (model, info):
            sample = voxelize_scan(kept, kept_intensity, info.input)
            logits = model(sparse_collate([(sample.coords, sample.feats)])).feats  # (M, C)
            probability, best = torch.softmax(logits.float(), dim=1).max(dim=1)
        labels[valid] = best[sample.inverse].numpy().astype(np.int32)
        scores[valid] = probability[sample.inverse].numpy()
        return labels, scores

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        """The batch protocol (a loop, Dask, Ray Data's ``map_batches``): ``{"points": [(N_i,
        3), ...], "intensity": [(N_i,) or None, ...] (optional), other columns...}`` -> the
        other columns unchanged (names, say) plus ``"labels"`` and ``"scores"``, one entry per
        scan."""
        if not isinstance(batch, Mapping) or "points" not in batch:
            raise TypeError("batch must be a mapping with a 'points' column (one (N, 3) array "
                            f"per scan); got {type(batch).__name__}")  # fmt: skip
        scans = list(batch["points"])
        intensities = list(batch.get("intensity", [None] * len(scans)))
        if len(intensities) != len(scans):
            raise ValueError(f"batch['intensity'] has {len(intensities)} entries for "
                             f"{len(scans)} scans")  # fmt: skip
        results = [self.segment(p, i) for p, i in zip(scans, intensities, strict=True)]
        out = {k: v for k, v in batch.items() if k not in ("points", "intensity")}
        out.update(labels=[r[0] for r in results], scores=[r[1] for r in results])
        return out
