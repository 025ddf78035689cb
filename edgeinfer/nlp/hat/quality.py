"""Quality of a sub-network with inherited weights, measured against a teacher on held-out text.

``similarity_quality``: Spearman rank correlation between the sub-network's and the teacher's
pairwise cosine similarities of the same sentences (1.0 = the same ranking of every pair).
It needs no common embedding width, so any sub-network can be compared with the full model;
it is what semantic search with the embeddings depends on. ``similarity_loss``: mean squared
difference of the two similarity matrices (the relational distillation loss of training).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..encoder import mean_pool
from ..quality import spearman
from .space import SubConfig

__all__ = [
    "METRICS",
    "QualityEvaluator",
    "similarity_loss",
    "similarity_quality",
    "tokenize_batches",
]

METRICS = ("similarity", "distill")


def _cosines(embeddings: torch.Tensor) -> torch.Tensor:
    unit = torch.nn.functional.normalize(embeddings, dim=1)
    return unit @ unit.T


def similarity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the pairwise cosine matrices of ``student (N, E)`` and
    ``teacher (N, D)`` embeddings (differentiable; scalar)."""
    return (_cosines(student) - _cosines(teacher)).pow(2).mean()


def similarity_quality(student: np.ndarray, teacher: np.ndarray) -> float:
    """Spearman correlation of the off-diagonal pairwise cosines of ``student (N, E)`` and
    ``teacher (N, D)`` (same N sentences, N >= 3)."""
    s, t = torch.as_tensor(student).double(), torch.as_tensor(teacher).double()
    if s.shape[0] != t.shape[0] or s.shape[0] < 3:
        raise ValueError(f"student and teacher need the same N >= 3 rows; got {s.shape[0]} and "
                         f"{t.shape[0]}")  # fmt: skip
    upper = torch.triu_indices(s.shape[0], s.shape[0], 1)
    pairs_s = _cosines(s)[upper[0], upper[1]].numpy()
    return spearman(pairs_s, _cosines(t)[upper[0], upper[1]].numpy())


def tokenize_batches(
    tokenizer, texts: Sequence[str], *, batch_size: int = 32, max_length: int = 64
) -> tuple[list[dict[str, torch.Tensor]], np.ndarray]:
    """Texts batched by length (little padding): ``(batches, order)`` where row ``i`` of the
    concatenated batches is ``texts[order[i]]``."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    batches = []
    for start in range(0, len(texts), batch_size):
        chunk = [texts[i] for i in order[start : start + batch_size]]
        encoded = tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")  # fmt: skip
        batches.append({"input_ids": encoded["input_ids"],
                        "attention_mask": encoded["attention_mask"]})  # fmt: skip
    return batches, order


class QualityEvaluator:
    """Fitness of sub-networks of ``supernet`` on ``texts`` against a teacher.

    ``metric="similarity"`` (default): ``similarity_quality`` (higher is better);
    ``"distill"``: minus ``similarity_loss`` (higher is better). The teacher embeddings are
    the supernet's largest sub-network unless ``teacher`` (a HF BERT model, e.g. the original
    pretrained one when the supernet has been trained) is given. Results are cached per config.

    Raises:
        ValueError: fewer than 3 texts or an unknown metric. RuntimeError: no tokenizer.
    """

    def __init__(
        self,
        supernet,
        texts: Sequence[str],
        *,
        teacher: torch.nn.Module | None = None,
        metric: str = "similarity",
        batch_size: int = 32,
        max_length: int = 64,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
        if len(texts) < 3:
            raise ValueError(f"quality needs at least 3 texts; got {len(texts)}")
        if supernet.tokenizer is None:
            raise RuntimeError("the supernet has no tokenizer; build it with from_pretrained")
        self.supernet, self.metric = supernet, metric
        max_length = min(max_length, supernet.model.config.max_position_embeddings)
        self.batches, _ = tokenize_batches(
            supernet.tokenizer, list(texts), batch_size=batch_size, max_length=max_length
        )
        self.teacher = self._embed(teacher, None)
        self.cache: dict[SubConfig, float] = {}

    @torch.no_grad()
    def _embed(self, model: torch.nn.Module | None, config: SubConfig | None) -> torch.Tensor:
        parts = []
        for batch in self.batches:
            if model is None:
                ids, mask = batch["input_ids"], batch["attention_mask"]
                parts.append(self.supernet.embed(ids, mask, config))
            else:
                hidden = model(**batch).last_hidden_state
                parts.append(mean_pool(hidden, batch["attention_mask"]))
        return torch.cat(parts)

    def embeddings(self, config: SubConfig) -> torch.Tensor:
        """Sub-network embeddings ``(N, E)`` of the evaluation texts (batched order)."""
        return self._embed(None, config)

    def __call__(self, config: SubConfig) -> float:
        """Quality of ``config`` (cached)."""
        if config not in self.cache:
            student = self.embeddings(config)
            if self.metric == "similarity":
                value = similarity_quality(student.numpy(), self.teacher.numpy())
            else:
                value = -float(similarity_loss(student, self.teacher))
            self.cache[config] = value
        return self.cache[config]
