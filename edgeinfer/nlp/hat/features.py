"""The 10 architecture features a latency predictor sees (HAT-style, encoder-only).

HAT describes an encoder-decoder SubTransformer by 10 numbers: for the encoder embed dim,
layer count, mean FFN dim, mean heads, and six decoder/cross-attention numbers. An encoder
has no decoder, so the first four are kept as HAT has them and the six decoder slots carry
the cost terms of an encoder layer stack instead (``S`` = sequence length of the profile):

``embed_dim, layers, mean_ffn, mean_heads`` (HAT's encoder features), ``sum_ffn``,
``sum_heads``, ``embed_x_sum_ffn`` (FFN GEMMs), ``embed_x_sum_heads`` (Q/K/V/output GEMMs),
``embed_x_layers`` (LayerNorms, residuals), ``macs`` (multiply-accumulates of one sequence:
``S * E * sum(4 h d + 2 f) + 2 S^2 d sum(h)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .space import SubConfig

__all__ = ["FEATURE_NAMES", "config_features"]

FEATURE_NAMES = (
    "embed_dim", "layers", "mean_ffn", "mean_heads", "sum_ffn", "sum_heads",
    "embed_x_sum_ffn", "embed_x_sum_heads", "embed_x_layers", "macs",
)  # fmt: skip


def config_features(
    configs: Sequence[SubConfig], *, seq_len: int, head_dim: int = 32
) -> np.ndarray:
    """Raw (unnormalised) features ``(N, 10)`` float64 of ``configs``, in ``FEATURE_NAMES``
    order."""
    rows = []
    for config in configs:
        embed, layers = config.embed_dim, config.layers
        sum_ffn, sum_heads = float(sum(config.ffn_dims)), float(sum(config.heads))
        macs = (seq_len * embed * (4 * head_dim * sum_heads + 2 * sum_ffn)
                + 2 * seq_len**2 * head_dim * sum_heads)  # fmt: skip
        rows.append([embed, layers, sum_ffn / layers, sum_heads / layers, sum_ffn, sum_heads,
                     embed * sum_ffn, embed * sum_heads, embed * layers, macs])  # fmt: skip
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
