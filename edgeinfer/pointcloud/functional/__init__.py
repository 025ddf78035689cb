"""Plain functions of the point-cloud engine; the ``nn`` modules call these."""

from .conv import ConvGeometry, conv3d, conv_kernel_map
from .pointvoxel import devoxelize, voxelize
from .pointwise import batch_norm, dropout, leaky_relu, relu
from .pooling import global_avg_pool, global_max_pool

__all__ = [
    "ConvGeometry",
    "batch_norm",
    "conv3d",
    "conv_kernel_map",
    "devoxelize",
    "dropout",
    "global_avg_pool",
    "global_max_pool",
    "leaky_relu",
    "relu",
    "voxelize",
]
