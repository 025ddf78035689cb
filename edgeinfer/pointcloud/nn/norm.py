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

    _folded_cache: tuple | None = None  # (inputs, their stamps, the fold): see ``folded``

    def folded(self, kernel: torch.Tensor, bias: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(kernel', bias')`` of a convolution ``kernel (K, C_in, C)``/``bias (C,)`` followed
        by this norm: ``conv'(x) = norm(conv(x))`` up to rounding. ``None`` when the norm
        normalises with batch statistics (training, or no running statistics).

        Without autograd the result is kept on the norm and reused while ``kernel``, ``bias``
        and the norm's parameters and statistics stay the same tensors with the same data
        (same storage, no in-place change since), so an eval-mode forward does not refold
        every layer."""
        if self.training or not self.track_running_stats or self.running_mean is None:
            return None
        if torch.is_grad_enabled():  # the fold must carry the graph to the parameters
            return self._fold(kernel, bias)
        inputs = (kernel, bias, self.running_mean, self.running_var, self.weight, self.bias)
        stamp = tuple(None if t is None else (t._version, t.data_ptr(), t.dtype) for t in inputs)
        cached = self._folded_cache
        if (cached is not None and cached[1] == stamp
                and all(a is b for a, b in zip(cached[0], inputs, strict=True))):
            return cached[2]
        folded = self._fold(kernel, bias)
        self._folded_cache = (inputs, stamp, folded)
        return folded

    def _fold(self, kernel: torch.Tensor, bias: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
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
