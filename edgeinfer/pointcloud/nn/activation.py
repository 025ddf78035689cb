"""Per-site activation and dropout modules on ``SparseTensor`` features."""

from __future__ import annotations

import torch

from ..functional.pointwise import dropout, leaky_relu, relu
from ..tensor import SparseTensor

__all__ = ["Dropout", "LeakyReLU", "ReLU"]


class ReLU(torch.nn.Module):
    """``max(feats, 0)`` on every site."""

    def forward(self, input: SparseTensor) -> SparseTensor:
        return relu(input)


class LeakyReLU(torch.nn.Module):
    """Leaky ReLU with ``negative_slope`` on every site."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    def forward(self, input: SparseTensor) -> SparseTensor:
        return leaky_relu(input, self.negative_slope)


class Dropout(torch.nn.Module):
    """Dropout of features with probability ``p`` (active in training mode only).

    Raises:
        ValueError: ``p`` outside ``[0, 1]``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout probability p must be in [0, 1]; got {p}")
        self.p = float(p)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, input: SparseTensor) -> SparseTensor:
        return dropout(input, self.p, self.training)
