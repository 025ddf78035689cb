"""Point-cloud models built by name (``create_model``, ``list_models``) and their parts."""

from .blocks import ConvBlock, DownStage, ResidualBlock, UpStage, add_feats, concat_feats
from .minkunet import MinkUNet, UNetConfig, UNetTrunk
from .points import PointMLP, PointTensor, PointToVoxel, VoxelToPoint, point_rows
from .registry import MODEL_INPUTS, create_model, list_models
from .spvcnn import SPVCNN

__all__ = [
    "MODEL_INPUTS",
    "SPVCNN",
    "ConvBlock",
    "DownStage",
    "MinkUNet",
    "PointMLP",
    "PointTensor",
    "PointToVoxel",
    "ResidualBlock",
    "UNetConfig",
    "UNetTrunk",
    "UpStage",
    "VoxelToPoint",
    "add_feats",
    "concat_feats",
    "create_model",
    "list_models",
    "point_rows",
]
