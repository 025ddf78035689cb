"""Point-cloud engine: spatial sparsity (sparse tensors, sparse convolution).

```python
from edgeinfer.pointcloud import SparseTensor, sparse_quantize, sparse_collate
from edgeinfer.pointcloud import nn as spnn
coords, indices, inverse = sparse_quantize(points_xyz, voxel_size=0.05)
x = sparse_collate([(coords, feats[indices])])
y = spnn.Conv3d(4, 32, kernel_size=3)(x)
logits = create_model("minkunet", in_channels=4, num_classes=6)(x)  # (N, 6) per voxel
```

Imports numpy and torch only; scipy loads when a kernel map is turned into matrices.
"""

from . import functional, models, nn
from .dense import from_dense, to_dense
from .models import PointTensor, create_model, list_models
from .quantize import sparse_collate, sparse_quantize
from .tensor import SparseCache, SparseTensor

__all__ = [
    "PointTensor",
    "SparseCache",
    "SparseTensor",
    "create_model",
    "from_dense",
    "functional",
    "list_models",
    "models",
    "nn",
    "sparse_collate",
    "sparse_quantize",
    "to_dense",
]
