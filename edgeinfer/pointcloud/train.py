"""Train a MinkUNet to segment generated street scans (``pretrained`` saves and loads it).

```python
from edgeinfer.pointcloud import TrainConfig, train_segmenter, load_pretrained, predict_points
model, report = train_segmenter(TrainConfig(steps=400))   # report.class_iou, report.miou
model, info = load_pretrained()                            # the shipped checkpoint
labels = predict_points(model, scan.points, scan.intensity, info.input.voxel_size)  # (N,)
```

A sample is one scan voxelised at ``voxel_size``; a voxel's features are those of its first
point (``voxel_features``) and its label is the majority label of its points. IoU is measured
per point: each point takes its voxel's prediction.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._info import PointInput
from ..datasets import SCENE_CLASSES, LidarScan, generate_scene
from .models import MinkUNet, UNetConfig
from .pretrained import FEATURES, PRETRAINED_PATH
from .quantize import sparse_collate, sparse_quantize

__all__ = [
    "FEATURES",
    "FEATURE_COLUMNS",
    "PRETRAINED_PATH",
    "TrainConfig",
    "TrainReport",
    "VoxelSample",
    "confusion_matrix",
    "evaluate_iou",
    "iou_from_confusion",
    "predict_points",
    "train_segmenter",
    "voxel_features",
    "voxelize_scan",
]

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TrainConfig:
    """What ``train_segmenter`` trains on and how.

    Attributes:
        train_seeds / eval_seeds: ``generate_scene`` seeds to train on / to measure IoU on
            (must not overlap).
        beams: LiDAR beams per generated scan.
        voxel_size: voxel edge in metres.
        width / blocks: MinkUNet size (``UNetConfig``).
        steps: optimiser steps, one scan each; lr / weight_decay: AdamW (one-cycle schedule).
        class_balanced: weight cross-entropy by ``1 / sqrt(class frequency)``.
        augment: random rotation about z, mirror in y and scale 0.95-1.05 per step.
        seed: torch / numpy seed of initialisation and augmentation.
    """

    train_seeds: tuple[int, ...] = tuple(range(1000, 1024))
    eval_seeds: tuple[int, ...] = (0, 1, 2, 3)
    beams: int = 64
    voxel_size: float = 0.1
    width: float = 0.25
    blocks: int = 1
    steps: int = 400
    lr: float = 2e-3
    weight_decay: float = 1e-4
    class_balanced: bool = True
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_seeds", tuple(int(s) for s in self.train_seeds))
        object.__setattr__(self, "eval_seeds", tuple(int(s) for s in self.eval_seeds))
        if not self.train_seeds:
            raise ValueError("TrainConfig.train_seeds must name at least one scene seed")
        if set(self.train_seeds) & set(self.eval_seeds):
            raise ValueError(
                "TrainConfig.train_seeds and eval_seeds overlap on "
                f"{sorted(set(self.train_seeds) & set(self.eval_seeds))}; hold them out"
            )
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"TrainConfig.steps must be an int >= 1; got {self.steps!r}")
        if not (math.isfinite(self.voxel_size) and self.voxel_size > 0):
            raise ValueError(f"TrainConfig.voxel_size must be > 0 metres; got {self.voxel_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be > 0; got {self.lr}")
        UNetConfig(len(FEATURES), len(SCENE_CLASSES), self.width, self.blocks)  # validates


@dataclass
class TrainReport:
    """What a training run did: per-step losses, time, and held-out IoU (NaN: class absent)."""

    losses: list[float]
    seconds: float
    final_loss: float
    class_iou: dict[str, float] = field(default_factory=dict)
    miou: float = float("nan")
    mean_voxels: float = 0.0


@dataclass(frozen=True)
class VoxelSample:
    """One voxelised scan: ``coords (M, 3)`` int32, ``feats (M, F)`` float32, ``labels (M,)``
    int64 or None, ``inverse (N,)`` int64 (the voxel of each point)."""

    coords: torch.Tensor
    feats: torch.Tensor
    labels: torch.Tensor | None
    inverse: torch.Tensor


def _columns(points: np.ndarray, intensity: np.ndarray) -> dict[str, Callable[[], Any]]:
    return {
        "intensity": lambda: intensity,
        "z / 2 m": lambda: points[:, 2] / 2.0,
        "range / 50 m": lambda: np.hypot(points[:, 0], points[:, 1]) / 50.0,
        "1": lambda: np.ones(len(points)),
        "x": lambda: points[:, 0],
        "y": lambda: points[:, 1],
        "z": lambda: points[:, 2],
    }


FEATURE_COLUMNS = tuple(_columns(np.zeros((0, 3)), np.zeros(0)))
"""The feature column names ``voxel_features`` computes (``PointInput.features`` entries)."""


def voxel_features(points: np.ndarray, intensity: np.ndarray | None,
                   features: Sequence[str] = FEATURES) -> np.ndarray:
    """Per-point features ``(N, len(features))`` float32, by column name (see
    :data:`FEATURE_COLUMNS`). The default, :data:`FEATURES`: intensity (0.5 if unknown),
    z / 2 m, horizontal range / 50 m, 1 (sensor frame, sensor at the origin); SPVNAS's
    ``("x", "y", "z", "intensity")`` are the coordinates in metres and the remission.

    Raises:
        ValueError: a column name it does not know (lists the known ones).
    """
    points = np.asarray(points, dtype=np.float32)
    count = len(points)
    if intensity is None:
        intensity = np.full(count, 0.5, dtype=np.float32)
    columns = _columns(points, np.asarray(intensity, dtype=np.float32))
    unknown = [name for name in features if name not in columns]
    if unknown:
        raise ValueError(f"unknown feature columns {unknown}; voxel_features computes "
                         f"{list(columns)}; compute these features yourself")  # fmt: skip
    return np.stack([columns[name]() for name in features], axis=1).astype(np.float32)


def voxelize_scan(points: np.ndarray, intensity: np.ndarray | None,
                  voxel_size: float | PointInput, labels: np.ndarray | None = None,
                  num_classes: int = 0) -> VoxelSample:
    """Voxelise ``points (N, 3)``; features of each voxel's first point, majority labels.

    ``voxel_size`` is a size in metres (edgeinfer's features, ``floor`` voxels) or a
    checkpoint's ``info.input`` (its voxel size, feature columns and quantisation mode).

    Raises:
        ValueError: no points, an unknown feature column, or the errors of ``sparse_quantize``.
    """
    if len(points) == 0:
        raise ValueError("cannot segment an empty scan: points has shape (0, 3)")
    spec = voxel_size if isinstance(voxel_size, PointInput) else PointInput(voxel_size, FEATURES)
    coords, indices, inverse = sparse_quantize(torch.from_numpy(np.ascontiguousarray(
        points, dtype=np.float32)), spec.voxel_size, mode=spec.quantize)
    feats = torch.from_numpy(voxel_features(points, intensity, spec.features))[indices]
    voxel_labels = None
    if labels is not None:
        classes = max(num_classes, int(labels.max()) + 1)
        votes = torch.zeros(len(coords) * classes, dtype=torch.int64)
        votes.index_add_(0, inverse * classes + torch.from_numpy(labels),
                         torch.ones(len(inverse), dtype=torch.int64))
        voxel_labels = votes.view(len(coords), classes).argmax(dim=1)  # (M,)
    return VoxelSample(coords, feats, voxel_labels, inverse)


@torch.no_grad()
def predict_points(model: torch.nn.Module, points: np.ndarray, intensity: np.ndarray | None,
                   voxel_size: float | PointInput) -> np.ndarray:
    """Predicted class of every point ``(N,)`` int64 (its voxel's argmax), model in eval mode.

    ``voxel_size``: metres, or the checkpoint's ``info.input`` (see ``voxelize_scan``)."""
    sample = voxelize_scan(points, intensity, voxel_size)
    model.eval()
    logits = model(sparse_collate([(sample.coords, sample.feats)])).feats  # (M, C)
    return logits.argmax(dim=1)[sample.inverse].numpy()


def evaluate_iou(model: torch.nn.Module, scans: Sequence[LidarScan], voxel_size: float,
                 class_names: Sequence[str] = SCENE_CLASSES) -> tuple[dict[str, float], float]:
    """Per-point IoU of each class over all ``scans`` together, and their mean (mIoU).

    A class absent from both labels and predictions gets NaN and is left out of the mean.
    """
    classes = len(class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)  # (truth, prediction)
    for scan in scans:
        predicted = predict_points(model, scan.points, scan.intensity, voxel_size)
        confusion += confusion_matrix(scan.labels, predicted, classes)
    return iou_from_confusion(confusion, class_names)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``(classes, classes)`` int64 counts, rows = true class, columns = predicted class."""
    keys = np.asarray(labels, dtype=np.int64) * classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(keys, minlength=classes * classes).reshape(classes, classes)


def iou_from_confusion(confusion: np.ndarray, class_names: Sequence[str] = SCENE_CLASSES
                       ) -> tuple[dict[str, float], float]:
    """Per-class IoU ``hits / (truth + predicted - hits)`` (NaN where a class appears in
    neither) and their mean over the classes that appear (mIoU)."""
    hits = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, hits / union, np.nan)
    per_class = {name: float(value) for name, value in zip(class_names, iou, strict=True)}
    return per_class, float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def _augment(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0.0, 2.0 * math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    if rng.random() < 0.5:
        rotation = rotation @ np.diag([1.0, -1.0, 1.0])
    return (points @ rotation.T * rng.uniform(0.95, 1.05)).astype(np.float32)


def _class_weights(scans: Sequence[LidarScan], classes: int, balanced: bool) -> torch.Tensor:
    if not balanced:
        return torch.ones(classes)
    counts = sum(np.bincount(s.labels, minlength=classes) for s in scans).astype(np.float64)
    weights = 1.0 / np.sqrt(np.maximum(counts / counts.sum(), 1e-4))
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    """One-cycle LR (10% warm-up, at least 2 steps); constant LR for runs of <= 2 steps."""
    if config.steps <= 2:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warmup = max(0.1, 2.0 / config.steps)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, config.steps,
                                               pct_start=warmup)


def train_segmenter(config: TrainConfig = TrainConfig(), *,
                    progress: Callable[[int, float], None] | None = None
                    ) -> tuple[MinkUNet, TrainReport]:
    """Train a MinkUNet on ``config.train_seeds`` scenes; IoU measured on ``eval_seeds``.

    ``progress(step, loss)`` is called after every step (e.g. to drive a progress bar).
    Returns the trained model (eval mode) and a ``TrainReport``.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    classes = len(SCENE_CLASSES)
    start = time.perf_counter()
    scans = [generate_scene(seed, beams=config.beams) for seed in config.train_seeds]
    log.info("generated %d training scans in %.1f s", len(scans), time.perf_counter() - start)
    model = MinkUNet(UNetConfig(len(FEATURES), classes, config.width, config.blocks))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = _schedule(optimizer, config)
    loss_fn = torch.nn.CrossEntropyLoss(_class_weights(scans, classes, config.class_balanced))
    losses, voxels = [], []
    model.train()
    for step in range(config.steps):
        scan = scans[int(rng.integers(len(scans)))]
        points = _augment(scan.points, rng) if config.augment else scan.points
        sample = voxelize_scan(points, scan.intensity, config.voxel_size, scan.labels, classes)
        logits = model(sparse_collate([(sample.coords, sample.feats)])).feats
        loss = loss_fn(logits, sample.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        voxels.append(len(sample.coords))
        if progress is not None:
            progress(step, losses[-1])
    model.eval()
    tail = losses[-max(1, min(50, len(losses) // 5)):]
    report = TrainReport(losses, 0.0, float(np.mean(tail)), mean_voxels=float(np.mean(voxels)))
    report.seconds = time.perf_counter() - start
    if config.eval_seeds:
        held_out = [generate_scene(seed, beams=config.beams) for seed in config.eval_seeds]
        report.class_iou, report.miou = evaluate_iou(model, held_out, config.voxel_size)
    return model, report
