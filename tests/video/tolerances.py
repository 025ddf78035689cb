"""Tolerances of the video tests, defined once.

The shift only moves values, so it is compared exactly. Streaming and offline run the same convs
on a batch of one frame versus a batch of ``T`` frames, which may pick different kernels and sum
in another order: float32 results agree to a few ulps of O(1) activations (models are calibrated
so that batch norm keeps activations O(1)).
"""

__all__ = ["STREAM_ATOL", "STREAM_RTOL"]

STREAM_ATOL = 1e-5  # float32 per-frame logits, streaming vs offline causal
STREAM_RTOL = 1e-5
