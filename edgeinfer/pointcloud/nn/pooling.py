"""Global pooling modules: a ``SparseTensor`` -> dense ``(B, C)`` per batch item."""

from __future__ import annotations

import torch

from ..functional.pooling import global_avg_pool, global_max_pool
from ..tensor import SparseTensor

__all__ = ["GlobalAvgPool", "GlobalMaxPool"]


class GlobalAvgPool(torch.nn.Module):
    """Mean of the features of each batch item: ``(B, C)`` (zeros for an item with no site)."""

    def forward(self, input: SparseTensor) -> torch.Tensor:
        return global_avg_pool(input)


class GlobalMaxPool(torch.nn.Module):
    """Channel maximum of each batch item: ``(B, C)`` (zeros for an item with no site)."""

    def forward(self, input: SparseTensor) -> torch.Tensor:
        return global_max_pool(input)
