"""A copy of an edgeinfer point-cloud model whose convolutions run in spconv 2.x (benchmarks).

The copy keeps the model's own block code; only the leaves are swapped: every ``Conv3d``
becomes the equivalent spconv layer with the *same* weights, BatchNorm/ReLU act on the
spconv features, and the SPVCNN point <-> voxel steps view the spconv tensor as a
``SparseTensor``. The blocks only use ``feats`` and ``replace(feats=...)``, which
``SpconvFeats`` provides, so both run the same graph.

spconv facts this relies on (checked by ``tests/pointcloud/test_pc_bench.py``):

- weight layout ``(C_out, kx, ky, kz, C_in)``: ``spconv_w[o, a, b, c, i] =
  kernel[(a * ky + b) * kz + c, i, o]`` (edgeinfer offsets are row-major, last axis fastest,
  odd sizes centred, even sizes ``0..k-1``: the same offsets spconv uses), except for
  ``1x1x1`` kernels (see ``spconv_weight``);
- coordinates ``(batch, x, y, z)`` >= 0 in units of the tensor stride (edgeinfer keeps the
  input scale), inside ``spatial_shape``; for k2s2 an odd extent drops the last plane, so
  callers pad ``spatial_shape`` to a multiple of 16 (see ``spatial_shape_for``);
- sub-manifold outputs keep the input rows; inverse convs return onto the rows of the
  tensor the matching ``indice_key`` downsampled.

spconv is imported only when a mirror is built.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from .. import nn as spnn
from ..tensor import SparseCache, SparseTensor
from .points import PointToVoxel, VoxelToPoint

__all__ = ["SpconvFeats", "mirror_in_spconv", "spatial_shape_for", "spconv_weight", "to_spconv"]


def spconv_weight(kernel: torch.Tensor, kernel_size: tuple[int, int, int]) -> torch.Tensor:
    """edgeinfer ``kernel (K, C_in, C_out)`` -> spconv weight ``(C_out, kx, ky, kz, C_in)``.

    A ``1x1x1`` kernel is special: spconv 2.3.8 runs it as ``feats @ weight.view(C_in,
    C_out)`` (its ``conv1x1`` shortcut ignores the ``(C_out, ..., C_in)`` layout), so the
    ``(C_in, C_out)`` matrix is stored row-major into the ``(C_out, 1, 1, 1, C_in)`` shape.
    """
    c_in, c_out = kernel.shape[1], kernel.shape[2]
    if kernel.shape[0] == 1:
        return kernel[0].contiguous().reshape(c_out, 1, 1, 1, c_in)
    return kernel.reshape(*kernel_size, c_in, c_out).permute(4, 0, 1, 2, 3)


def spatial_shape_for(coords: torch.Tensor, multiple: int = 16) -> list[int]:
    """``spatial_shape`` covering non-negative ``coords (N, 4)``, each side a multiple of 16.

    Raises:
        ValueError: a negative spatial coordinate (shift the points first).
    """
    if len(coords) and int(coords[:, 1:].min()) < 0:
        raise ValueError("spconv needs coordinates >= 0; shift the points first")
    high = coords[:, 1:].max(dim=0).values + 1 if len(coords) else torch.ones(3)
    return [int(-(-int(v) // multiple) * multiple) for v in high]


class SpconvFeats:
    """A spconv ``SparseConvTensor`` seen through the ``feats`` / ``replace`` interface.

    ``stride`` is the tensor stride (int); ``as_sparse_tensor`` gives an edgeinfer view with
    input-scale coordinates (for the point <-> voxel steps).
    """

    def __init__(self, tensor: Any, stride: int = 1) -> None:
        self.tensor, self.stride = tensor, stride

    @property
    def feats(self) -> torch.Tensor:
        return self.tensor.features

    def replace(self, *, feats: torch.Tensor) -> SpconvFeats:
        return SpconvFeats(self.tensor.replace_feature(feats), self.stride)

    def __len__(self) -> int:
        return int(self.tensor.features.shape[0])

    def as_sparse_tensor(self) -> SparseTensor:
        coords = self.tensor.indices.clone()
        coords[:, 1:] *= self.stride
        cache, stride = SparseCache(), (self.stride,) * 3
        return SparseTensor.derived(self.feats, cache.put_coords(stride, coords), stride, cache)


def to_spconv(tensor: SparseTensor) -> SpconvFeats:
    """A stride-1 ``SparseTensor`` with coords >= 0 as a spconv tensor (same rows)."""
    import spconv.pytorch as spconv

    coords = tensor.coords.contiguous()
    batch = tensor.batch_size or 1
    return SpconvFeats(spconv.SparseConvTensor(tensor.feats, coords, spatial_shape_for(coords),
                                               batch))


class _Conv(torch.nn.Module):
    def __init__(self, layer: Any, out_stride: int) -> None:
        super().__init__()
        self.layer, self.out_stride = layer, out_stride

    def forward(self, input: SpconvFeats) -> SpconvFeats:
        return SpconvFeats(self.layer(input.tensor), self.out_stride)


class _OnFeats(torch.nn.Module):
    def __init__(self, op: torch.nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, input: SpconvFeats) -> SpconvFeats:
        return input.replace(feats=self.op(input.feats))


class _ToPoints(VoxelToPoint):
    def forward(self, voxels: Any, points: Any) -> torch.Tensor:
        return super().forward(voxels.as_sparse_tensor(), points)


class _ToVoxels(PointToVoxel):
    def forward(self, voxels: Any, points: Any, point_feats: torch.Tensor) -> Any:
        out = super().forward(voxels.as_sparse_tensor(), points, point_feats)
        return voxels.replace(feats=out.feats)


def _spconv_conv(layer: spnn.Conv3d, in_stride: int) -> _Conv:
    import spconv.pytorch as spconv

    geometry, config = layer.config.geometry, layer.config
    size, channels = geometry.kernel_size, (config.in_channels, config.out_channels)
    if geometry.transposed:
        out_stride = in_stride // geometry.stride[0]
        made = spconv.SparseInverseConv3d(*channels, size, indice_key=f"down{out_stride}",
                                          bias=config.bias)
    elif geometry.is_strided:
        out_stride = in_stride * geometry.stride[0]
        made = spconv.SparseConv3d(*channels, size, stride=geometry.stride, bias=config.bias,
                                   indice_key=f"down{in_stride}")
    else:
        out_stride = in_stride
        made = spconv.SubMConv3d(*channels, size, bias=config.bias,
                                 indice_key=f"subm{size[0]}_{in_stride}")
    with torch.no_grad():
        made.weight.copy_(spconv_weight(layer.kernel, size))
        if config.bias:
            made.bias.copy_(layer.bias)
    return _Conv(made, out_stride)


def _input_strides(model: torch.nn.Module, run: Any) -> dict[str, int]:
    """The input stride of every ``Conv3d`` of ``model``, recorded during ``run()``."""
    strides: dict[str, int] = {}

    def recorder(name: str) -> Any:
        def record(_module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            strides.setdefault(name, args[0].stride[0])
        return record

    hooks = [
        module.register_forward_pre_hook(recorder(name))
        for name, module in model.named_modules() if isinstance(module, spnn.Conv3d)
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return strides


def _swap(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def mirror_in_spconv(model: torch.nn.Module, run: Any) -> torch.nn.Module:
    """A copy of ``model`` (eval mode) whose leaves run on ``SpconvFeats``.

    ``run()`` must call ``model`` once (on a representative input) so the stride of every
    conv is known. Call the copy's ``run`` method with ``to_spconv(tensor)`` input.
    """
    strides = _input_strides(model, run)
    if isinstance(model, spnn.Conv3d):
        return _spconv_conv(model, strides[""])
    mirror = copy.deepcopy(model).eval()
    for name, module in list(mirror.named_modules()):
        if isinstance(module, spnn.Conv3d):
            _swap(mirror, name, _spconv_conv(module, strides[name]))
        elif isinstance(module, spnn.BatchNorm):
            plain = torch.nn.BatchNorm1d(module.num_features, module.eps, module.momentum)
            plain.load_state_dict(module.state_dict())
            _swap(mirror, name, _OnFeats(plain.eval()))
        elif isinstance(module, spnn.ReLU):
            _swap(mirror, name, _OnFeats(torch.nn.ReLU()))
        elif isinstance(module, VoxelToPoint):
            _swap(mirror, name, _ToPoints())
        elif isinstance(module, PointToVoxel):
            _swap(mirror, name, _ToVoxels())
    return mirror
