"""Point-cloud engine: spatial sparsity (sparse tensors, sparse convolution, MinkUNet/SPVCNN).

Not built yet.
"""

__all__: list[str] = []
