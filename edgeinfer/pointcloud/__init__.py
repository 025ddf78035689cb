"""Point-cloud engine: spatial sparsity (sparse tensors, sparse convolution).

```python
from edgeinfer.pointcloud import SparseTensor, sparse_quantize, sparse_collate
from edgeinfer.pointcloud import nn as spnn
coords, indices, inverse = sparse_quantize(points_xyz, voxel_size=0.05)
x = sparse_collate([(coords, feats[indices])])
y = spnn.Conv3d(4, 32, kernel_size=3)(x)
logits = create_model("minkunet", in_channels=4, num_classes=6)(x)  # (N, 6) per voxel
```

``load_pretrained()`` returns ``(model, info)``: the MinkUNet trained on generated street scenes
(``scripts/train_pointcloud.py`` retrains it) and its ``PretrainedInfo``;
``load_pretrained(path)`` reads any supported checkpoint file, ``save_checkpoint`` writes any
registered model. Imports numpy and torch only; scipy loads when a kernel map is turned into
matrices.
"""

from .._info import PointInput, PretrainedInfo
from . import functional, models, nn, train
from .dense import from_dense, to_dense
from .models import PointTensor, create_model, list_models
from .predict import Segmenter
from .pretrained import PRETRAINED, SOURCES, load_checkpoint, load_pretrained, save_checkpoint
from .quantize import sparse_collate, sparse_quantize
from .tensor import SparseCache, SparseTensor
from .train import (
    TrainConfig,
    TrainReport,
    evaluate_iou,
    predict_points,
    train_segmenter,
)

__all__ = [
    "PRETRAINED",
    "SOURCES",
    "PointInput",
    "PointTensor",
    "PretrainedInfo",
    "Segmenter",
    "SparseCache",
    "SparseTensor",
    "TrainConfig",
    "TrainReport",
    "create_model",
    "evaluate_iou",
    "from_dense",
    "functional",
    "list_models",
    "load_checkpoint",
    "load_pretrained",
    "models",
    "nn",
    "predict_points",
    "save_checkpoint",
    "sparse_collate",
    "sparse_quantize",
    "to_dense",
    "train",
    "train_segmenter",
]
