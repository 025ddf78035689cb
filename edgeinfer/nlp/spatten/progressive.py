"""Progressive attention quantisation (SpAtten): low-bit Q·K first, full precision on demand.

Q and K are quantised symmetrically per row (one scale per token and head) to ``bits``; the
attention probabilities are computed from those. A query row whose largest probability is
below ``threshold`` (a flat distribution, where low precision changes the ranking most) is
recomputed from the full-precision Q and K; peaked rows keep their low-bit probabilities. The
value product is always in full precision.

On this CPU the scheme is *simulated*: the low-bit pass runs integer-valued float tensors
through the float GEMM (exact for <= 8 bits), and the full-precision probabilities are computed
for all rows and used where a row is redone. It measures the accuracy of the scheme and the
fraction of rows that need the second pass (what saves memory traffic and compute on an
accelerator), not a CPU speed-up: it is slower than fused SDPA here.
Shapes: ``(B, h, L, d)`` query/key/value, ``mask (B, L)`` True on real tokens.
"""

from __future__ import annotations

import math

import torch

__all__ = ["fake_quantize_rows", "progressive_attention"]


def fake_quantize_rows(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x (..., d)`` rounded to ``bits``-bit symmetric integers per row, scaled back.

    Raises:
        ValueError: ``bits`` outside [2, 16].
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an int in [2, 16]; got {bits!r}")
    levels = 2 ** (bits - 1) - 1
    amax = x.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / levels, torch.ones_like(amax))
    return torch.round(x / scale).clamp_(-levels, levels) * scale


def _probabilities(query: torch.Tensor, key: torch.Tensor, key_mask: torch.Tensor):
    logits = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
    return torch.softmax(logits.masked_fill(~key_mask, float("-inf")), dim=-1)


def progressive_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    bits: int,
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention context ``(B, h, L, d)`` and the recomputed rows ``(B, h, L)`` bool.

    ``threshold`` 0 keeps every row low-bit; ``threshold >= 1`` recomputes every row (equal
    to full-precision attention). Padded query rows are never counted as recomputed.

    Raises:
        ValueError: ``bits`` outside [2, 16] or ``threshold`` outside [0, 1].
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1]; got {threshold}")
    key_mask = mask[:, None, None, :]  # (B, 1, 1, L)
    real_rows = mask[:, None, :].expand(query.shape[:3])  # (B, h, L)
    if threshold >= 1.0:
        return _probabilities(query, key, key_mask) @ value, real_rows.clone()
    probs = _probabilities(fake_quantize_rows(query, bits), fake_quantize_rows(key, bits), key_mask)
    redo = (probs.amax(dim=-1) < threshold) & real_rows  # (B, h, L)
    if bool(redo.any()):  # vectorised: full-precision rows computed for all, used where redone
        exact = _probabilities(query, key, key_mask)
        probs = torch.where(redo[..., None], exact, probs)
    return probs @ value, redo
