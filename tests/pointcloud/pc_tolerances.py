"""Tolerances of the point-cloud tests, defined once (conv ones shared with the sparse core)."""

from tests.common_sparse.tolerances import CONV_ATOL, CONV_RTOL, SCIPY_ATOL

__all__ = ["CONV_ATOL", "CONV_RTOL", "INTERP_ATOL", "POOL_ATOL", "SCIPY_ATOL"]

POOL_ATOL = 1e-6  # float32 means / maxima vs python loops over O(1) values
INTERP_ATOL = 1e-5  # float32 trilinear weights (computed in float64) vs a float64 loop
