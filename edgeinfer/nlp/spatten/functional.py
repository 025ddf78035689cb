"""The math of SpAtten cascade pruning on a BERT-family layer, as plain functions.

Shapes: ``B`` batch, ``L`` current (padded) sequence length, ``D`` hidden size, ``h`` kept
heads, ``d`` head size. ``mask (B, L)`` is True on real tokens. Kept tokens are always packed to
the front of each row in their original order, so a shorter sequence is padded at the end.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ...common_sparse import select_rows, threshold_rows, topk_rows

__all__ = [
    "attention_output",
    "feed_forward",
    "head_magnitude",
    "head_rows",
    "keep_counts",
    "project_heads",
    "prune_tokens",
    "select_heads",
    "select_token_rows",
    "token_importance",
]


def head_rows(heads: torch.Tensor, head_size: int) -> torch.Tensor:
    """Projection rows ``(h * d,)`` int64 of the kept ``heads (h,)``, head-major."""
    offsets = torch.arange(head_size, dtype=torch.int64, device=heads.device)
    return (heads[:, None] * head_size + offsets).reshape(-1)


def _sliced_linear(x: torch.Tensor, linear: nn.Linear, rows: torch.Tensor | None) -> torch.Tensor:
    if rows is None:
        return linear(x)
    weight = select_rows(linear.weight, rows)
    bias = None if linear.bias is None else select_rows(linear.bias, rows)
    return F.linear(x, weight, bias)


def project_heads(
    x: torch.Tensor, attention: nn.Module, rows: torch.Tensor | None, head_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Query, key, value ``(B, h, L, d)`` of the kept heads of ``x (B, L, D)``.

    ``attention`` is the HF self-attention module (``query``/``key``/``value`` linears);
    ``rows`` from ``head_rows`` or ``None`` for all heads. Weights are physically sliced.
    """
    batch, length, _ = x.shape

    def split(y: torch.Tensor) -> torch.Tensor:
        return y.view(batch, length, -1, head_size).transpose(1, 2)

    return tuple(
        split(_sliced_linear(x, linear, rows))
        for linear in (attention.query, attention.key, attention.value)
    )


def attention_output(
    context: torch.Tensor, residual: torch.Tensor, output: nn.Module, rows: torch.Tensor | None
) -> torch.Tensor:
    """Output projection + residual + LayerNorm: ``context (B, h, L, d)`` -> ``(B, L, D)``.

    ``output`` is the HF ``BertSelfOutput``; with ``rows`` only the kept heads' input columns
    of its dense weight are used.
    """
    batch, _, length, _ = context.shape
    merged = context.transpose(1, 2).reshape(batch, length, -1)
    dense = output.dense
    weight = dense.weight if rows is None else dense.weight.index_select(1, rows)
    return output.LayerNorm(F.linear(merged, weight, dense.bias) + residual)


def feed_forward(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """The layer's FFN block with residual + LayerNorm, ``(B, L, D)`` -> ``(B, L, D)``."""
    return layer.output(layer.intermediate(x), x)


def token_importance(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor, stride: int
) -> torch.Tensor:
    """Attention probability received by each key token ``(B, L)``, summed over heads.

    Estimated from every ``stride``-th query row (real rows only) so it stays cheap next to
    the fused SDPA that produces the layer output: ``query, key (B, h, L, d)``.
    """
    sampled = query[:, :, ::stride]  # (B, h, Lq, d)
    logits = sampled @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])  # (B, h, Lq, L)
    logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    weights = mask[:, ::stride].to(probs.dtype)  # padded query rows count 0
    return torch.einsum("bhqk,bq->bk", probs, weights)


def head_magnitude(context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed L2 norm of each head's output over real tokens: ``(B, h, L, d)`` -> ``(h,)``."""
    norms = torch.linalg.vector_norm(context, dim=-1)  # (B, h, L)
    return torch.einsum("bhl,bl->h", norms, mask.to(norms.dtype))


def select_heads(importance: torch.Tensor, heads: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` kept heads (ascending) among ``heads (h,)`` by ``importance (H,)``."""
    if count >= heads.numel():
        return heads
    return heads[topk_rows(importance[heads], count)]


def keep_counts(original_lengths: torch.Tensor, ratio: float, minimum: torch.Tensor) -> list[int]:
    """Tokens to keep per sequence ``(B,)``: ``ceil(ratio * original length)``, at least
    ``minimum`` (per sequence: its protected tokens)."""
    return [
        max(int(low), math.ceil(ratio * int(n) - 1e-9))
        for n, low in zip(original_lengths, minimum, strict=True)
    ]


def _kept_indices(
    scores: torch.Tensor, protect: torch.Tensor, count: int, threshold: float | None
) -> torch.Tensor:
    """Kept positions (ascending) of one sequence's real tokens ``scores (n,)``."""
    count = min(count, scores.numel())
    ranked = scores.masked_fill(protect, float("inf"))
    kept = topk_rows(ranked, count)
    if threshold is None or count == scores.numel():
        return kept
    passing = threshold_rows(ranked, threshold * float(scores.mean()))
    return kept if passing.numel() <= count else passing


def select_token_rows(
    tensors: tuple[torch.Tensor, ...], kept: list[torch.Tensor]
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Physically gather the kept rows of each ``(B, L, ...)`` tensor into ``(B, L', ...)``.

    ``kept[b]`` holds sequence ``b``'s kept positions; shorter rows are padded by repeating
    their first kept row. Returns the gathered tensors and the new ``mask (B, L')``.
    """
    batch, length = tensors[0].shape[:2]
    new_length = max(index.numel() for index in kept)
    flat, mask = [], torch.zeros(batch, new_length, dtype=torch.bool)
    for row, index in enumerate(kept):
        mask[row, : index.numel()] = True
        pad = index[:1].expand(new_length - index.numel())
        flat.append(torch.cat([index, pad]) + row * length)
    flat_index = torch.cat(flat)
    gathered = tuple(
        select_rows(t.reshape(batch * length, *t.shape[2:]), flat_index).view(
            batch, new_length, *t.shape[2:]
        )
        for t in tensors
    )
    return gathered, mask


def prune_tokens(
    tensors: tuple[torch.Tensor, ...],
    mask: torch.Tensor,
    importance: torch.Tensor,
    protect: torch.Tensor,
    counts: list[int],
    threshold: float | None = None,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Keep each sequence's most important tokens; drop the rest from every tensor.

    Args:
        tensors: ``(B, L, ...)`` tensors to prune alike (hidden states, importance, ...).
        mask: ``(B, L)`` real tokens. importance: ``(B, L)`` cumulative scores.
        protect: ``(B, L)`` tokens always kept ([CLS], [SEP]).
        counts: per-sequence keep count (a floor in threshold mode).
        threshold: ``None`` = top-k; else keep scores >= threshold x the sequence's mean.

    Returns:
        The pruned tensors ``(B, L', ...)`` and the new ``mask (B, L')``.
    """
    kept = []
    for row in range(mask.shape[0]):
        real = torch.nonzero(mask[row]).reshape(-1)
        local = _kept_indices(importance[row, real], protect[row, real], counts[row], threshold)
        kept.append(real[local])
    return select_token_rows(tensors, kept)
