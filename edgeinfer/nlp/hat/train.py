"""Distillation of a SuperEncoder from its own full (pretrained) model, sandwich sampling.

Each step takes a batch of training sentences and accumulates the gradients of the
*largest*, the *smallest* and ``random_subnets`` random sub-networks (the sandwich rule),
then takes one AdamW step (linear warm-up, then linear decay). The teacher is the full model
as it was before training; its mean-pooled outputs are computed once for every sentence.
Loss per sub-network of width ``E``: the relational loss ``similarity_loss`` (pairwise cosines
of the batch) plus ``feature_weight`` x the mean squared error between the sub-network's
mean-pooled output and the teacher's on the same (first ``E``, importance-ordered) channels.

Checkpoints (``save_checkpoint``) hold the supernet weights, the optimizer state and the step;
training resumes from one exactly (batches and sampled sub-networks derive from the seed and
the step number).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..._checkpoint import (
    is_envelope,
    open_envelope,
    read_checkpoint_file,
    state_dict_mismatch,
    write_envelope,
)
from .quality import similarity_loss, tokenize_batches
from .space import SearchSpace, SubConfig

__all__ = [
    "DEFAULT_CHECKPOINT",
    "SUPERNET_MODEL",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "save_checkpoint",
    "teacher_features",
    "train_supernet",
]

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path.home() / ".cache" / "edgeinfer" / "hat" / "supernet.pt"
_FORMAT = "edgeinfer.hat.supernet/1"


@dataclass(frozen=True)
class TrainConfig:
    """Distillation settings; ``time_limit_s`` stops early (a checkpoint is written)."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 2e-5  # 1e-4 pulled the largest sub-network to 0.88 quality in 80 steps
    warmup_steps: int = 40
    random_subnets: int = 2
    max_length: int = 64
    feature_weight: float = 0.1
    checkpoint_every: int = 25
    time_limit_s: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_length", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1; got {getattr(self, name)}")
        if self.batch_size < 3:
            raise ValueError(f"TrainConfig.batch_size must be >= 3 (pairwise similarities); "
                             f"got {self.batch_size}")  # fmt: skip
        if self.lr <= 0 or self.random_subnets < 0 or self.warmup_steps < 0:
            raise ValueError("TrainConfig needs lr > 0, random_subnets >= 0, warmup_steps >= 0")


@dataclass(frozen=True)
class TrainResult:
    """``steps`` done in total, ``seconds`` of this run, ``losses`` (mean per step of this run)."""

    steps: int
    seconds: float
    losses: tuple[float, ...]


def _pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@torch.no_grad()
def teacher_features(supernet, batches: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """Mean-pooled (unnormalised) outputs ``(B, H)`` of the largest sub-network, internal
    channel order, one tensor per batch."""
    largest = supernet.space.largest()
    return [_pooled(supernet(b["input_ids"], b["attention_mask"], largest, original_order=False),
                    b["attention_mask"]) for b in batches]  # fmt: skip


def _subnet_loss(supernet, config: SubConfig, batch, target: torch.Tensor, weight: float):
    hidden = supernet(batch["input_ids"], batch["attention_mask"], config, original_order=False)
    pooled = _pooled(hidden, batch["attention_mask"])
    width = config.embed_dim
    feature = (pooled - target[:, :width]).pow(2).mean()
    return similarity_loss(pooled, target) + weight * feature


def _sandwich(space: SearchSpace, rng: np.random.Generator, count: int) -> list[SubConfig]:
    return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(count))]


def _lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    return max(0.0, 1.0 - (step - config.warmup_steps) / span)


def _step_batch(config: TrainConfig, step: int, n: int) -> np.ndarray:
    rng = np.random.default_rng([config.seed, step])
    return rng.choice(n, size=min(config.batch_size, n), replace=False)


def train_supernet(
    supernet,
    texts: Sequence[str],
    config: TrainConfig = TrainConfig(),
    *,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Distil ``supernet`` (in place) on ``texts`` with sandwich sampling (module docstring).

    ``checkpoint``: file written every ``checkpoint_every`` steps and at the end; with
    ``resume`` an existing one is loaded first and training continues from its step. The
    teacher is ``supernet`` as passed in (before any checkpoint is loaded): pass the
    pretrained supernet, not a distilled one.

    Raises:
        ValueError: fewer than 3 texts, or a checkpoint of another supernet.
    """
    if len(texts) < 3:
        raise ValueError(f"training needs at least 3 texts; got {len(texts)}")
    max_length = min(config.max_length, supernet.model.config.max_position_embeddings)
    targets = _teacher_targets(supernet, texts, max_length)  # before loading a checkpoint
    optimizer = torch.optim.AdamW(supernet.model.parameters(), lr=config.lr, weight_decay=0.0)
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        start = load_checkpoint(checkpoint, supernet, optimizer)
    bar = _bar(config.steps, start, progress)
    losses, began = [], time.perf_counter()
    for step in range(start, config.steps):
        rows = _step_batch(config, step, len(texts))
        batch = _collate(supernet.tokenizer, [texts[i] for i in rows], max_length)
        losses.append(_train_step(supernet, optimizer, batch, targets[rows], step, config))
        _report(bar, on_step, step, losses[-1])
        done = step + 1
        out_of_time = config.time_limit_s is not None and (
            time.perf_counter() - began > config.time_limit_s
        )
        if checkpoint is not None and (done % config.checkpoint_every == 0 or done == config.steps
                                       or out_of_time):  # fmt: skip
            save_checkpoint(checkpoint, supernet, optimizer, done, config)
        if out_of_time:
            logger.info("time limit reached after step %d", done)
            break
    if bar is not None:
        bar.close()
    return TrainResult(start + len(losses), time.perf_counter() - began, tuple(losses))


def _teacher_targets(supernet, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """``(N, H)`` teacher features of every text, in text order."""
    batches, order = tokenize_batches(supernet.tokenizer, list(texts), batch_size=64,
                                      max_length=max_length)  # fmt: skip
    targets = torch.empty(len(texts), supernet.model.config.hidden_size)
    targets[torch.from_numpy(order)] = torch.cat(teacher_features(supernet, batches))
    return targets


def _train_step(supernet, optimizer, batch, targets, step: int, config: TrainConfig) -> float:
    """One sandwich step (gradients of every sampled sub-network, one update); mean loss."""
    for group in optimizer.param_groups:
        group["lr"] = config.lr * _lr_factor(step, config)
    optimizer.zero_grad(set_to_none=True)
    rng = np.random.default_rng([config.seed, step, 1])
    subnets = _sandwich(supernet.space, rng, config.random_subnets)
    total = 0.0
    for sub in subnets:
        with torch.enable_grad():
            loss = _subnet_loss(supernet, sub, batch, targets, config.feature_weight)
            loss.backward()
        total += float(loss.detach()) / len(subnets)
    torch.nn.utils.clip_grad_norm_(supernet.model.parameters(), 1.0)
    optimizer.step()
    return total


def _collate(tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")  # fmt: skip
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def _bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="distil", unit="step")


def _report(bar, on_step, step: int, loss: float) -> None:
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str(f"loss {loss:.4f}")
    if on_step is not None:
        on_step(step, loss)


SUPERNET_MODEL = "hat-supernet"
"""The ``model`` name of a supernet checkpoint's envelope."""


def save_checkpoint(path: str | Path, supernet, optimizer, step: int, config: TrainConfig) -> Path:
    """Write supernet weights, channel order, space, optimizer state and ``step`` atomically,
    as an edgeinfer checkpoint envelope (config: the space and the training settings)."""
    return write_envelope(
        path, engine="nlp", model=SUPERNET_MODEL,
        config={"space": asdict(supernet.space), "train_config": asdict(config)},
        state_dict=supernet.model.state_dict(),
        extra={"step": step, "channels": supernet.channels.clone(),
               "optimizer": None if optimizer is None else optimizer.state_dict()},
    )  # fmt: skip


def _payload(path: Path) -> dict:
    """The supernet checkpoint at ``path`` as the legacy field names (envelope or not)."""
    data = read_checkpoint_file(path, "supernet checkpoint", "train one with "
                                "scripts/train_hat.py or pass the right path")  # fmt: skip
    if is_envelope(data):
        envelope = open_envelope(data, path, "nlp", SUPERNET_MODEL)
        return {"space": envelope.config["space"], "model": envelope.state_dict,
                **envelope.extra}
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a supernet checkpoint (no edgeinfer envelope, and not "
                         f"the earlier format {_FORMAT!r})")  # fmt: skip
    return data


def load_checkpoint(path: str | Path, supernet, optimizer=None) -> int:
    """Load a checkpoint into ``supernet`` (and ``optimizer``); returns the step it holds.

    Raises:
        FileNotFoundError: no file. ValueError: corrupt, not a supernet checkpoint (another
            engine's or another nlp file: named), or of another space / model shape.
    """
    path = Path(path)
    data = _payload(path)
    space = SearchSpace(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in data["space"].items()})  # fmt: skip
    if space != supernet.space:
        raise ValueError(f"{path} was trained for {space}, not this supernet's {supernet.space}")
    mismatch = state_dict_mismatch(supernet.model.state_dict(), data["model"])
    if mismatch is not None:
        raise ValueError(f"{path} does not fit this supernet's model: {mismatch}")
    supernet.model.load_state_dict(data["model"], strict=True)
    supernet.channels.copy_(data["channels"])
    if optimizer is not None and data.get("optimizer") is not None:
        optimizer.load_state_dict(data["optimizer"])
    return int(data["step"])
