"""Dense grids <-> ``SparseTensor`` (for tests and small examples).

Grid cell ``(b, :, i, j, k)`` holds the site ``(b, origin + (i, j, k) * stride)``.
"""

from __future__ import annotations

from typing import Any

import torch

from .tensor import SparseTensor, Triple, as_triple

__all__ = ["from_dense", "to_dense"]


def _origin(origin: Any) -> torch.Tensor:
    try:
        values = tuple(int(v) for v in origin)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3:
        raise ValueError(f"origin must be 3 ints (x, y, z); got {origin!r}")
    return torch.tensor(values, dtype=torch.int64)


def to_dense(
    input: SparseTensor,
    spatial_shape: Triple | None = None,
    *,
    origin: Triple = (0, 0, 0),
) -> torch.Tensor:
    """Dense ``(B, C, X, Y, Z)`` grid of ``input``; cells without a site are zero.

    ``spatial_shape`` defaults to the smallest grid holding every site. Never drops a site.

    Raises:
        ValueError: a site below ``origin`` or beyond ``spatial_shape`` (shift ``origin``
            or enlarge the shape), or ``origin`` off the stride grid.
    """
    start = _origin(origin)
    stride = torch.tensor(input.stride, dtype=torch.int64)
    if bool((start % stride).ne(0).any()):
        raise ValueError(f"origin {tuple(start.tolist())} must be a multiple of the stride "
                         f"{input.stride}")
    cells = torch.div(input.coords[:, 1:].to(torch.int64) - start, stride, rounding_mode="floor")
    if spatial_shape is None:
        shape = (cells.max(dim=0).values + 1).tolist() if len(cells) else [0, 0, 0]
    else:
        shape = list(as_triple(spatial_shape, "spatial_shape", minimum=0))
    if len(cells) and (bool((cells < 0).any()) or bool((cells >= torch.tensor(shape)).any())):
        raise ValueError(
            f"to_dense: sites span grid cells {cells.min(0).values.tolist()}.."
            f"{cells.max(0).values.tolist()} but the grid is {shape} from origin "
            f"{tuple(start.tolist())}; pass an origin <= the smallest coordinate and a larger "
            "spatial_shape"
        )
    dense = input.feats.new_zeros(input.batch_size, input.feats.shape[1], *shape)
    batch = input.coords[:, 0].to(torch.int64)
    dense[batch, :, cells[:, 0], cells[:, 1], cells[:, 2]] = input.feats
    return dense


def from_dense(
    dense: torch.Tensor, *, stride: int | Triple = 1, origin: Triple = (0, 0, 0)
) -> SparseTensor:
    """``SparseTensor`` of the cells of ``dense (B, C, X, Y, Z)`` with any non-zero channel.

    Sites are listed in ``(batch, x, y, z)`` order.

    Raises:
        ValueError: ``dense`` is not a floating 5-D tensor.
    """
    if not isinstance(dense, torch.Tensor) or dense.dim() != 5 or not dense.is_floating_point():
        got = (f"{dense.dtype} of shape {tuple(dense.shape)}"
               if isinstance(dense, torch.Tensor) else type(dense).__name__)
        raise ValueError(f"from_dense needs a floating (B, C, X, Y, Z) tensor; got {got}")
    step = torch.tensor(as_triple(stride, "stride"), dtype=torch.int64)
    active = torch.nonzero(dense.ne(0).any(dim=1))  # (N, 4) as (b, i, j, k)
    feats = dense[active[:, 0], :, active[:, 1], active[:, 2], active[:, 3]]
    xyz = active[:, 1:] * step + _origin(origin)
    coords = torch.cat([active[:, :1], xyz], dim=1).to(torch.int32)
    return SparseTensor(feats, coords, tuple(step.tolist()))
