"""Point-cloud engine: spatial sparsity (sparse tensors, sparse convolution).

```python
from edgeinfer.pointcloud import SparseTensor, sparse_quantize, sparse_collate
from edgeinfer.pointcloud import nn as spnn
coords, indices, inverse = sparse_quantize(points_xyz, voxel_size=0.05)
x = sparse_collate([(coords, feats[indices])])
y = spnn.Conv3d(4, 32, kernel_size=3)(x)
```

Imports numpy and torch only; scipy loads when a kernel map is turned into matrices.
"""

from . import functional, nn
from .dense import from_dense, to_dense
from .quantize import sparse_collate, sparse_quantize
from .tensor import SparseCache, SparseTensor

__all__ = [
    "SparseCache",
    "SparseTensor",
    "from_dense",
    "functional",
    "nn",
    "sparse_collate",
    "sparse_quantize",
    "to_dense",
]
