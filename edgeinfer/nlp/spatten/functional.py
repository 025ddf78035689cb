"""The math of SpAtten cascade pruning on a BERT-family layer, as plain functions.

Shapes: ``B`` batch, ``L`` current (padded) sequence length, ``D`` hidden size, ``h`` kept
heads, ``d`` head size. ``mask (B, L)`` is True on real tokens. Kept tokens are always packed to
the front of each row in their original order, so a shorter sequence is padded at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from ...common_sparse import select_rows, threshold_rows, topk_rows
from .quant import apply_linear

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


def project_heads(
    x: torch.Tensor, linears: Mapping[str, nn.Module], rows: torch.Tensor | None, head_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Query, key, value ``(B, h, L, d)`` of the kept heads of ``x (B, L, D)``.

    ``linears``: the layer's ``"query"``/``"key"``/``"value"`` linears (``nn.Linear`` or
    ``Int8Linear``), or one fused ``"qkv"`` linear; ``rows`` from ``head_rows`` or ``None``
    for all heads. Weights are physically sliced.
    """
    batch, length, _ = x.shape

    def split(y: torch.Tensor) -> torch.Tensor:
        return y.view(batch, length, -1, head_size).transpose(1, 2)

    if "qkv" in linears:  # one fused GEMM: weight rows [query; key; value]
        width = linears["qkv"].out_features // 3
        fused = None if rows is None else torch.cat([rows, rows + width, rows + 2 * width])
        return tuple(split(y) for y in apply_linear(x, linears["qkv"], rows=fused).chunk(3, -1))
    return tuple(
        split(apply_linear(x, linears[name], rows=rows)) for name in ("query", "key", "value")
    )


def attention_output(
    context: torch.Tensor,
    residual: torch.Tensor,
    dense: nn.Module,
    layer_norm: nn.Module,
    rows: torch.Tensor | None,
) -> torch.Tensor:
    """Output projection + residual + LayerNorm: ``context (B, h, L, d)`` -> ``(B, L, D)``.

    ``dense`` is the output linear; with ``rows`` only the kept heads' input columns are used.
    """
    batch, _, length, _ = context.shape
    merged = context.transpose(1, 2).reshape(batch, length, -1)
    return layer_norm(apply_linear(merged, dense, cols=rows) + residual)


def feed_forward(
    x: torch.Tensor, layer: nn.Module, linears: Mapping[str, nn.Module]
) -> torch.Tensor:
    """The layer's FFN block with residual + LayerNorm, ``(B, L, D)`` -> ``(B, L, D)``.

    ``layer`` is the HF layer (activation, LayerNorm); ``linears["ffn_in"]`` and
    ``linears["ffn_out"]`` its two linears (``nn.Linear`` or ``Int8Linear``).
    """
    inner = layer.intermediate.intermediate_act_fn(apply_linear(x, linears["ffn_in"]))
    return layer.output.LayerNorm(apply_linear(inner, linears["ffn_out"]) + x)


def token_importance(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor, stride: int
) -> torch.Tensor:
    """Attention probability received by each key token ``(B, L)``, summed over heads.

    Estimated from every ``stride``-th query row (real rows only) so it stays cheap next to
    the fused SDPA that produces the layer output: ``query, key (B, h, L, d)``.
    """
    batch, heads, _, head_size = query.shape
    sampled = query[:, :, ::stride] * head_size**-0.5  # (B, h, Lq, d)
    logits = sampled @ key.transpose(-1, -2)  # (B, h, Lq, L)
    if not bool(mask.all()):
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    probs = torch.softmax(logits, dim=-1).reshape(batch, -1, key.shape[2])  # (B, h*Lq, L)
    weights = mask[:, ::stride].to(probs.dtype).repeat(1, heads)  # padded query rows count 0
    return (weights[:, None, :] @ probs).reshape(batch, -1)


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
