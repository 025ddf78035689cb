"""Train TSM / TSN classifiers on the synthetic motion set and evaluate them.

``train_classifier`` fits a :class:`~edgeinfer.video.TSMNet` on clips drawn fresh from
:func:`~edgeinfer.datasets.make_motion_dataset` (one new pool of clips per epoch, seeds from
``TrainConfig.train_seed`` = 1000 up; draw the held-out set from another seed, the script uses 0),
with
AdamW, warm-up then cosine decay over the budget: ``steps`` or ``time_limit_s``, whichever
runs out first (the schedule follows the larger fraction used, so a time-capped run still
anneals). Inputs are RGB in [0, 1] without mean/std, as
:func:`~edgeinfer.video.frame_to_tensor` feeds a streaming model.

Checkpoints (save, load, the shipped ``"tsm"`` / ``"tsn"`` ones) live in
:mod:`edgeinfer.video.pretrained`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .tsm import TSMNet

__all__ = [
    "DIRECTION_PAIRS",
    "TrainConfig",
    "TrainResult",
    "clips_to_tensor",
    "evaluate",
    "pair_accuracy",
    "predict",
    "train_classifier",
]

DIRECTION_PAIRS: tuple[tuple[str, str], ...] = (
    ("left", "right"), ("up", "down"), ("approach", "recede"), ("rotate_cw", "rotate_ccw"),
)


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`train_classifier` trains (sizes, optimiser, budget).

    Attributes:
        size: clip side in pixels (>= 16). frames: clip length ``T`` (= ``n_segment``).
        steps: optimiser steps (the one-cycle schedule spans them). batch_size: clips per step.
        lr / weight_decay: AdamW peak learning rate and decay.
        clips_per_class: clips per class in each epoch's freshly generated pool.
        train_seed: seed of the first pool (epoch ``e`` uses ``train_seed + e``).
        pools: cycle through this many pools (``None``: a fresh pool every epoch; 1: one fixed
            pool, e.g. to check that a model can fit it).
        seed: torch seed (initialisation, batch order, dropout).
        time_limit_s: stop early after this many seconds (``None``: no limit).

    Raises:
        ValueError: a field out of range.
    """

    size: int = 32
    frames: int = 8
    steps: int = 2500
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clips_per_class: int = 64
    train_seed: int = 1000
    pools: int | None = None
    seed: int = 0
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        for name, low in (("size", 16), ("frames", 2), ("steps", 1), ("batch_size", 1),
                          ("clips_per_class", 1), ("train_seed", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite float >= 0; got {value!r}")
        if self.pools is not None and (not isinstance(self.pools, int) or self.pools < 1):
            raise ValueError(f"pools must be None or an int >= 1; got {self.pools!r}")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be None or > 0; got {self.time_limit_s!r}")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_classifier` did: per-step losses, steps run, wall seconds."""

    losses: tuple[float, ...]
    steps: int
    seconds: float


def clips_to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, T, H, W, 3)`` RGB clips -> float32 ``(N*T, 3, H, W)`` in [0, 1].

    Raises:
        TypeError: not a uint8 array. ValueError: not 5-D with 3 channels.
    """
    if not isinstance(clips, np.ndarray) or clips.dtype != np.uint8:
        got = f"{clips.dtype} array" if isinstance(clips, np.ndarray) else type(clips).__name__
        raise TypeError(f"clips must be a uint8 numpy array (N, T, H, W, 3); got {got}")
    if clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"clips must have shape (N, T, H, W, 3); got {clips.shape}")
    n, t, h, w, _ = clips.shape
    tensor = torch.from_numpy(np.ascontiguousarray(clips)).reshape(n * t, h, w, 3)
    return tensor.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def _pool(config: TrainConfig, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    from ..datasets.video import make_motion_dataset

    if config.pools is not None:
        epoch %= config.pools
    return make_motion_dataset(config.clips_per_class, config.train_seed + epoch,
                               frames=config.frames, size=config.size)


def _batches(config: TrainConfig, generator: torch.Generator):
    """Endless ``(clips uint8 (B, T, H, W, 3), labels (B,))`` from a fresh pool each epoch."""
    epoch = 0
    while True:
        clips, labels = _pool(config, epoch)
        order = torch.randperm(len(labels), generator=generator).numpy()
        for start in range(0, len(order) - config.batch_size + 1, config.batch_size):
            index = order[start : start + config.batch_size]
            yield clips[index], labels[index]
        epoch += 1


def _progress(config: TrainConfig, step: int, elapsed: float) -> float:
    """Fraction of the budget used: steps or wall time, whichever runs out first."""
    by_time = 0.0 if config.time_limit_s is None else elapsed / config.time_limit_s
    return max(step / config.steps, by_time)


def _learning_rate(peak: float, progress: float) -> float:
    """Linear warm-up over the first 10 % of the budget, then cosine decay to 2 % of peak."""
    if progress < 0.1:
        return peak * (0.1 + 0.9 * progress / 0.1)
    return peak * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * (progress - 0.1) / 0.9)))


def train_classifier(
    model: TSMNet, config: TrainConfig | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on generated motion clips; leaves it in eval mode.

    Args:
        model: a :class:`TSMNet` with ``n_segment == config.frames``.
        on_step: called as ``on_step(step, loss)`` after each step (progress reporting).

    Raises:
        TypeError: ``model`` not a TSMNet. ValueError: ``n_segment`` differs from ``frames``.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(model, TSMNet):
        raise TypeError(f"model must be a TSMNet (create_model); got {type(model).__name__}")
    if model.config.n_segment != config.frames:
        raise ValueError(f"model.n_segment={model.config.n_segment} must equal "
                         f"config.frames={config.frames}; build the model with n_segment=frames")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    losses: list[float] = []
    start = time.perf_counter()
    model.train()
    batches = _batches(config, generator)
    for step, (clips, labels) in zip(range(config.steps), batches, strict=False):
        progress = _progress(config, step, time.perf_counter() - start)
        if progress >= 1.0:
            break
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(config.lr, progress)
        logits = model(clips_to_tensor(clips))
        loss = nn.functional.cross_entropy(logits, torch.from_numpy(labels))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return TrainResult(tuple(losses), len(losses), time.perf_counter() - start)


@torch.inference_mode()
def predict(model: TSMNet, clips: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Predicted class per clip, int64 ``(N,)``, of uint8 ``(N, T, H, W, 3)`` clips (eval mode)."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(clips), batch_size):
        out.append(model(clips_to_tensor(clips[start : start + batch_size])).argmax(dim=1))
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def pair_accuracy(
    predictions: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], pair: tuple[str, str]
) -> float:
    """Accuracy on the clips whose label is one of ``pair`` (a wrong pair member counts wrong)."""
    members = [class_names.index(name) for name in pair]
    mask = np.isin(labels, members)
    return float((predictions[mask] == labels[mask]).mean()) if mask.any() else math.nan


def evaluate(
    model: TSMNet, clips: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, float]:
    """Held-out accuracies: ``"accuracy"``, ``"direction accuracy"`` (clips of the paired
    classes) and one ``"a/b"`` entry per :data:`DIRECTION_PAIRS` pair."""
    predictions = predict(model, clips)
    result = {"accuracy": float((predictions == labels).mean())}
    paired = [name for pair in DIRECTION_PAIRS for name in pair]
    mask = np.isin(labels, [class_names.index(name) for name in paired])
    result["direction accuracy"] = float((predictions[mask] == labels[mask]).mean())
    for pair in DIRECTION_PAIRS:
        result["/".join(pair)] = pair_accuracy(predictions, labels, class_names, pair)
    return result
