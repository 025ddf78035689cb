"""``nn`` modules of the point-cloud engine (``from edgeinfer.pointcloud import nn as spnn``).

Each module holds parameters and configuration and calls one function of ``functional``.
"""

from .activation import Dropout, LeakyReLU, ReLU
from .conv import Conv3d, Conv3dConfig
from .norm import BatchNorm
from .pooling import GlobalAvgPool, GlobalMaxPool

__all__ = [
    "BatchNorm",
    "Conv3d",
    "Conv3dConfig",
    "Dropout",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "LeakyReLU",
    "ReLU",
]
