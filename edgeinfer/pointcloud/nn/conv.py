"""``Conv3d``: a sparse 3-D convolution layer (sub-manifold, strided or transposed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...common_sparse import kernel_offsets
from ..functional.conv import ConvGeometry, conv3d
from ..tensor import SparseTensor

__all__ = ["Conv3d", "Conv3dConfig"]


@dataclass(frozen=True)
class Conv3dConfig:
    """Channels and geometry of a ``Conv3d``; validated when built."""

    in_channels: int
    out_channels: int
    geometry: ConvGeometry = field(default_factory=ConvGeometry)
    bias: bool = False

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Conv3d {name} must be an int >= 1; got {value!r}")
        if not isinstance(self.geometry, ConvGeometry):
            raise TypeError(f"geometry must be a ConvGeometry; got {type(self.geometry).__name__}")


def _short(value: tuple[int, int, int]) -> int | tuple[int, int, int]:
    return value[0] if len(set(value)) == 1 else value


class Conv3d(torch.nn.Module):
    """Sparse 3-D convolution of a ``SparseTensor`` (TorchSparse-style arguments;
    ``bias`` and ``transposed`` are keyword-only).

    Parameters: ``kernel (K, in_channels, out_channels)`` with ``K = prod(kernel_size)``
    (``(1, C_in, C_out)`` for ``kernel_size=1``) and optional ``bias (out_channels,)``.

    ``kernel_offsets`` ``(K, 3)`` gives the ``(dx, dy, dz)`` of each row of ``kernel`` in units
    of the input tensor stride times dilation (``common_sparse.kernel_offsets`` order: odd
    sizes centred ``-(k//2)..k//2``, even sizes ``0..k-1``, last axis fastest). With
    ``step_k = kernel_offsets[k] * dilation * input_stride``:

    - ``stride=1``: sub-manifold, ``y[i] = sum_k x[site_i + step_k] @ kernel[k]``, same sites;
    - ``stride=s``: sites ``unique(floor(c / (s * input_stride)) * s * input_stride)``, output
      stride ``s * input_stride``, same formula; no input site is ever dropped;
    - ``transposed=True``: back onto the finer sites this tensor was downsampled from
      (stride ``input_stride / s``); fine site ``c`` gets ``x[c - step_k] @ kernel[k]`` with
      ``step_k`` at the fine stride (the transpose of the cached strided map).

    Raises (in ``forward``): ``ValueError``/``TypeError`` naming the layer, e.g. for a channel
    mismatch or a kernel/stride combination that would drop sites.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int] = 3,
        stride: int | tuple[int, int, int] = 1,
        dilation: int | tuple[int, int, int] = 1,
        *,
        bias: bool = False,
        transposed: bool = False,
    ) -> None:
        super().__init__()
        geometry = ConvGeometry(kernel_size, stride, dilation, transposed)
        self.config = Conv3dConfig(in_channels, out_channels, geometry, bias)
        self.kernel = torch.nn.Parameter(torch.empty(geometry.volume, in_channels, out_channels))
        self.bias = torch.nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ``+-1/sqrt(fan_in)``, ``fan_in = K * in_channels`` (kernel and bias)."""
        bound = 1.0 / math.sqrt(self.config.geometry.volume * self.config.in_channels)
        with torch.no_grad():
            self.kernel.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    @property
    def kernel_offsets(self) -> torch.Tensor:
        """``(K, 3)`` int64 offset of each row of ``kernel`` (see the class docstring)."""
        return kernel_offsets(self.config.geometry.kernel_size, 3)

    def extra_repr(self) -> str:
        geometry, config = self.config.geometry, self.config
        text = f"{config.in_channels}, {config.out_channels}, "
        text += f"kernel_size={_short(geometry.kernel_size)}"
        if geometry.stride != (1, 1, 1):
            text += f", stride={_short(geometry.stride)}"
        if geometry.dilation != (1, 1, 1):
            text += f", dilation={_short(geometry.dilation)}"
        text += ", bias=True" if config.bias else ""
        return text + (", transposed=True" if geometry.transposed else "")

    def forward(
        self,
        input: SparseTensor,
        *,
        folded: tuple[torch.Tensor, torch.Tensor | None] | None = None,
        initial: torch.Tensor | None = None,
        relu: bool = False,
    ) -> SparseTensor:
        """Convolve ``input`` (``feats (N, in_channels)``) -> ``feats (M, out_channels)``.

        ``folded`` replaces ``(kernel, bias)`` for this call (e.g. with a BatchNorm folded
        in, see ``BatchNorm.folded``); ``initial (M, out_channels)`` is added to the result
        (see ``functional.conv3d``). Both default to the plain layer. ``relu`` applies ReLU
        to the result (fused into the numba kernel where it runs).
        """
        kernel, bias = (self.kernel, self.bias) if folded is None else folded
        if not isinstance(input, SparseTensor):
            raise TypeError(f"{self}: expected a SparseTensor input; got {type(input).__name__}")
        channels = input.feats.shape[1]
        if channels != self.config.in_channels:
            raise ValueError(
                f"{self}: expected {self.config.in_channels} input channels, got {channels}"
            )
        try:
            return conv3d(input, kernel, bias, self.config.geometry, initial, relu=relu)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{self}: {error}") from error
