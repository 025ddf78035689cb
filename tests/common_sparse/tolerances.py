"""Tolerances of the sparse-core tests, defined once.

Sparse and dense float32 convolutions sum the same products in different orders, so they agree
to a few ulps of the largest partial sum; inputs are standard normal and weights scaled by
1/sqrt(K * C_in), so outputs are O(1).
"""

__all__ = ["CONV_ATOL", "CONV_RTOL", "GRAD_ATOL", "SCIPY_ATOL"]

CONV_ATOL = 2e-5  # float32 sparse conv vs dense conv / loop reference
CONV_RTOL = 1e-5
SCIPY_ATOL = 2e-5  # float32 scipy selection-matrix product vs sparse_conv
GRAD_ATOL = 1e-8  # float64 autograd vs reference gradients
