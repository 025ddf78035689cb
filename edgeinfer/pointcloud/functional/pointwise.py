"""Per-site feature ops on a ``SparseTensor``: batch norm, activations, dropout.

Each returns ``input.replace(feats=...)``: the same coordinates, stride and cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from ..tensor import SparseTensor

__all__ = ["batch_norm", "dropout", "leaky_relu", "relu"]


def _feats(input: SparseTensor, op: str) -> torch.Tensor:
    if not isinstance(input, SparseTensor):
        raise TypeError(f"{op} input must be a SparseTensor; got {type(input).__name__}")
    return input.feats


def batch_norm(
    input: SparseTensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> SparseTensor:
    """``torch.nn.functional.batch_norm`` over the ``(N, C)`` feats (statistics over sites).

    An empty tensor passes through unchanged (its statistics are undefined; running stats
    are left alone).

    Raises:
        TypeError: input not a SparseTensor. ValueError: ``C`` differs from the stats/affine.
    """
    feats = _feats(input, "batch_norm")
    sizes = {t.shape[0] for t in (running_mean, running_var, weight, bias) if t is not None}
    if sizes and sizes != {feats.shape[1]}:
        raise ValueError(
            f"batch_norm expected {sorted(sizes)[0]} channels (from its statistics/affine "
            f"parameters); got feats with {feats.shape[1]}"
        )
    if feats.shape[0] == 0:
        return input.replace(feats=feats)
    out = F.batch_norm(feats, running_mean, running_var, weight, bias, training, momentum, eps)
    return input.replace(feats=out)


def relu(input: SparseTensor) -> SparseTensor:
    """``max(feats, 0)`` per site."""
    feats = _feats(input, "relu")
    return input.replace(feats=F.relu(feats))


def leaky_relu(input: SparseTensor, negative_slope: float = 0.01) -> SparseTensor:
    """``feats`` where positive, else ``negative_slope * feats``."""
    feats = _feats(input, "leaky_relu")
    return input.replace(feats=F.leaky_relu(feats, negative_slope))


def dropout(input: SparseTensor, p: float = 0.5, training: bool = True) -> SparseTensor:
    """Zero each feature with probability ``p`` while training (scaled by ``1 / (1 - p)``).

    Raises:
        ValueError: ``p`` outside ``[0, 1]``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1]; got {p}")
    feats = _feats(input, "dropout")
    return input.replace(feats=F.dropout(feats, p, training))
