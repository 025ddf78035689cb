"""The sparse core every engine shares: coordinates, hashing, kernel maps, gather/scatter.

Engines import from here, never from each other; this package imports no engine. Only numpy
and torch load with it; scipy loads when ``KernelMap.to_scipy`` is called.
"""

from .cache import KernelMapCache, KernelMapKey
from .conv import ConvPlan, plan_offset_groups, sparse_conv
from .coords import (
    BATCH_BITS,
    KeyLayout,
    coords_in_range,
    key_layout,
    offset_keys,
    pack_coords,
    quantize_points,
    unique_coords,
    unpack_coords,
    validate_coords,
)
from .hashing import CoordTable
from .kernel_map import (
    KernelMap,
    as_int_tuple,
    build_strided_map,
    build_submanifold_map,
    kernel_offsets,
    transpose_kernel_map,
)
from .rows import scatter_rows, select_rows, threshold_rows, topk_rows

__all__ = [
    "BATCH_BITS",
    "ConvPlan",
    "CoordTable",
    "KernelMap",
    "KernelMapCache",
    "KernelMapKey",
    "KeyLayout",
    "as_int_tuple",
    "build_strided_map",
    "build_submanifold_map",
    "coords_in_range",
    "kernel_offsets",
    "key_layout",
    "offset_keys",
    "pack_coords",
    "plan_offset_groups",
    "quantize_points",
    "scatter_rows",
    "select_rows",
    "sparse_conv",
    "threshold_rows",
    "topk_rows",
    "transpose_kernel_map",
    "unique_coords",
    "unpack_coords",
    "validate_coords",
]
