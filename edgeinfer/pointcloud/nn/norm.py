"""``BatchNorm``: ``torch.nn.BatchNorm1d`` over the features of a ``SparseTensor``."""

from __future__ import annotations

import torch

from ..functional.pointwise import batch_norm
from ..tensor import SparseTensor

__all__ = ["BatchNorm"]


class BatchNorm(torch.nn.BatchNorm1d):
    """Batch norm of ``feats (N, C)`` (statistics over all sites of the batch).

    Same parameters, buffers and state-dict keys as ``torch.nn.BatchNorm1d(num_features)``.
    An empty input passes through unchanged and leaves the running statistics alone.
    In eval mode the models fold it into the convolution before it (``folded``).
    """

    def folded(self, kernel: torch.Tensor, bias: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(kernel', bias')`` of a convolution ``kernel (K, C_in, C)``/``bias (C,)`` followed
        by this norm: ``conv'(x) = norm(conv(x))`` up to rounding. ``None`` when the norm
        normalises with batch statistics (training, or no running statistics)."""
        if self.training or not self.track_running_stats or self.running_mean is None:
            return None
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        if bias is not None:
            shift = shift + bias * scale
        return kernel * scale, shift

    def forward(self, input: SparseTensor) -> SparseTensor:  # type: ignore[override]
        """Normalise ``input.feats``; coordinates and cache are shared with ``input``."""
        if not isinstance(input, SparseTensor):
            raise TypeError(f"{self}: expected a SparseTensor input; got {type(input).__name__}")
        if input.feats.shape[1] != self.num_features:
            raise ValueError(
                f"{self}: expected {self.num_features} input channels, got {input.feats.shape[1]}"
            )
        use_batch_stats = self.training or not self.track_running_stats
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and len(input):
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        track = not self.training or self.track_running_stats
        return batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=factor,
            eps=self.eps,
        )
