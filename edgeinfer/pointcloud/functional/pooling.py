"""Global pooling of a ``SparseTensor`` per batch item -> a dense ``(B, C)`` tensor.

``B`` is ``input.batch_size`` (``max(batch) + 1``); a batch index with no site pools to zeros.
Both reductions are deterministic (fixed order, any thread count).
"""

from __future__ import annotations

import torch

from ..tensor import SparseTensor

__all__ = ["global_avg_pool", "global_max_pool"]


def _batch_rows(input: SparseTensor, op: str) -> tuple[torch.Tensor, int]:
    if not isinstance(input, SparseTensor):
        raise TypeError(f"{op} input must be a SparseTensor; got {type(input).__name__}")
    return input.coords[:, 0].to(torch.int64), input.batch_size


def global_avg_pool(input: SparseTensor) -> torch.Tensor:
    """Mean of the feats of each batch item: ``(B, C)``."""
    batch, size = _batch_rows(input, "global_avg_pool")
    feats = input.feats
    sums = feats.new_zeros(size, feats.shape[1]).index_add_(0, batch, feats)
    counts = torch.bincount(batch, minlength=size).clamp_(min=1).to(feats.dtype)
    return sums / counts[:, None]


def global_max_pool(input: SparseTensor) -> torch.Tensor:
    """Per-channel maximum of the feats of each batch item: ``(B, C)``."""
    batch, size = _batch_rows(input, "global_max_pool")
    feats = input.feats
    out = feats.new_zeros(size, feats.shape[1])
    index = batch[:, None].expand_as(feats)
    return out.scatter_reduce(0, index, feats, reduce="amax", include_self=False)
