"""Sparse 3-D convolution of a ``SparseTensor``: sub-manifold, strided and transposed.

Row ``k`` of a kernel ``(K, C_in, C_out)`` belongs to offset ``common_sparse.kernel_offsets
(kernel_size, 3)[k]`` (per axis: odd ``k`` -> ``-(k//2)..k//2``, even -> ``0..k-1``; last axis
fastest). With ``step_k = offset_k * dilation * tensor_stride`` (coordinates keep the input
scale):

- sub-manifold (stride 1): output sites = input sites, ``y[q] = sum_k x[q + step_k] @ W_k``;
- strided (stride ``s``): outputs at ``unique(floor(c / (s * ts)) * s * ts)`` with stride
  ``s * ts``, same formula; combinations that would drop input sites are rejected;
- transposed (stride ``s``): the input has stride ``S`` and the output the finer stride
  ``S / s`` and the finer sites cached when the input was made by a strided convolution;
  fine site ``c`` receives ``x[q] @ W_k`` from every coarse ``q = c - step_k``
  (``step_k`` at the fine stride), i.e. the transpose of the strided map with this key.

Kernel maps are cached on ``input.cache`` under ``KernelMapKey(fine tensor stride, stride,
kernel_size, dilation, transposed)``; a transposed map reuses the cached strided map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...common_sparse import (
    KernelMap,
    KernelMapKey,
    build_strided_map,
    build_submanifold_map,
    sparse_conv,
    transpose_kernel_map,
)
from ..tensor import SparseTensor, Triple, as_triple

__all__ = ["ConvGeometry", "conv3d", "conv_kernel_map"]


@dataclass(frozen=True)
class ConvGeometry:
    """Shape of a sparse convolution; ints are expanded to ``(x, y, z)`` triples."""

    kernel_size: int | Triple = 3
    stride: int | Triple = 1
    dilation: int | Triple = 1
    transposed: bool = False

    def __post_init__(self) -> None:
        for name in ("kernel_size", "stride", "dilation"):
            object.__setattr__(self, name, as_triple(getattr(self, name), name))
        if not isinstance(self.transposed, bool):
            raise TypeError(f"transposed must be a bool; got {self.transposed!r}")

    @property
    def volume(self) -> int:
        """Number of kernel offsets ``K``."""
        kx, ky, kz = self.kernel_size
        return kx * ky * kz

    @property
    def is_strided(self) -> bool:
        """True if any axis has a stride above 1 (a down- or upsampling map)."""
        return self.stride != (1, 1, 1)


def _key(geometry: ConvGeometry, fine_stride: Triple, transposed: bool) -> KernelMapKey:
    return KernelMapKey(fine_stride, geometry.stride, geometry.kernel_size, geometry.dilation,
                        transposed)


def _fine_stride(coarse: Triple, stride: Triple) -> Triple:
    if any(c % s for c, s in zip(coarse, stride, strict=True)):
        raise ValueError(
            f"a transposed convolution with stride {stride} needs an input stride divisible by "
            f"it; got input stride {coarse}"
        )
    return as_triple(tuple(c // s for c, s in zip(coarse, stride, strict=True)), "stride")


def _scaled(stride: Triple, factor: Triple) -> Triple:
    return as_triple(tuple(t * f for t, f in zip(stride, factor, strict=True)), "stride")


def _forward_map(input: SparseTensor, geometry: ConvGeometry, fine: Triple) -> KernelMap:
    """The cached (or newly built) non-transposed map from the stride-``fine`` sites."""
    cache = input.cache
    fine_coords = cache.coords_at(fine)
    if fine_coords is None:
        raise ValueError(
            f"a transposed convolution from stride {input.stride} maps back onto the stride "
            f"{fine} sites, but this tensor's cache has none (known strides: {cache.strides()}); "
            "use it on tensors produced by a strided convolution of the same input"
        )

    def build() -> KernelMap:
        if not geometry.is_strided:
            return build_submanifold_map(
                fine_coords, geometry.kernel_size, dilation=geometry.dilation,
                tensor_stride=fine,
            )
        kernel_map, out_coords = build_strided_map(
            fine_coords, geometry.kernel_size, geometry.stride,
            dilation=geometry.dilation, tensor_stride=fine,
        )
        out_coords = out_coords.to(torch.int32)
        stored = cache.put_coords(_scaled(fine, geometry.stride), out_coords)
        assert torch.equal(stored, out_coords), "one coordinate set (and order) per stride"
        return kernel_map

    return cache.kernel_maps.get_or_build(_key(geometry, fine, False), build)


def conv_kernel_map(input: SparseTensor, geometry: ConvGeometry) -> tuple[KernelMap, Triple]:
    """The kernel map of ``geometry`` on ``input`` (cached on ``input.cache``), output stride.

    Raises:
        ValueError: a transposed conv without cached finer sites, or sizes the core rejects.
    """
    if not geometry.transposed:
        return _forward_map(input, geometry, input.stride), _scaled(input.stride, geometry.stride)
    fine = _fine_stride(input.stride, geometry.stride)

    def build() -> KernelMap:
        return transpose_kernel_map(_forward_map(input, geometry, fine))

    return input.cache.kernel_maps.get_or_build(_key(geometry, fine, True), build), fine


def conv3d(
    input: SparseTensor,
    kernel: torch.Tensor,
    bias: torch.Tensor | None = None,
    geometry: ConvGeometry | None = None,
    initial: torch.Tensor | None = None,
    *,
    relu: bool = False,
    backend: str | None = None,
) -> SparseTensor:
    """Sparse convolution of ``input`` (see the module docstring for the three kinds).

    Args:
        input: ``SparseTensor`` with ``feats (N, C_in)``.
        kernel: ``(K, C_in, C_out)`` with ``K = prod(kernel_size)`` (row order of
            ``kernel_offsets``).
        bias: optional ``(C_out,)``.
        geometry: kernel size, stride, dilation, transposed (default: 3, 1, 1, False).
        initial: optional ``(M, C_out)`` features on the output sites (output row order) that
            the result is added to, e.g. a residual shortcut; not modified.
        relu: apply ReLU to the result (fused into the numba kernel's write).
        backend: ``"auto"``, ``"numba"`` or ``"torch"`` (``common_sparse.resolve_backend``;
            default ``$EDGEINFER_BACKEND`` or ``"auto"``).

    Returns a ``SparseTensor`` with ``feats (M, C_out)`` sharing ``input.cache``.

    Raises:
        TypeError: non-tensor kernel/bias, dtype mismatch. ValueError: shapes that do not
        match, or a geometry the kernel-map builders reject (e.g. dropping sites).
    """
    geometry = geometry or ConvGeometry()
    if not isinstance(input, SparseTensor):
        raise TypeError(f"conv3d input must be a SparseTensor; got {type(input).__name__}")
    if not isinstance(kernel, torch.Tensor) or kernel.dim() != 3:
        got = tuple(kernel.shape) if isinstance(kernel, torch.Tensor) else type(kernel).__name__
        raise ValueError(f"kernel must be a tensor of shape (K, C_in, C_out); got {got}")
    if kernel.shape[0] != geometry.volume or kernel.shape[1] != input.feats.shape[1]:
        raise ValueError(
            f"kernel must have shape (K={geometry.volume}, C_in={input.feats.shape[1]}, C_out) "
            f"for kernel_size {geometry.kernel_size}; got {tuple(kernel.shape)}"
        )
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != kernel.shape[2:]):
        got = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"bias must have shape ({kernel.shape[2]},); got {got}")
    kernel_map, out_stride = conv_kernel_map(input, geometry)
    out_coords = input.cache.coords_at(out_stride)
    feats = sparse_conv(input.feats, kernel, kernel_map, kernel_map.n_out, bias=bias,
                        initial=initial, relu=relu, backend=backend)
    return SparseTensor.derived(feats, out_coords, out_stride, input.cache)
