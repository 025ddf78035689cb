"""The math of SpAtten cascade pruning on a BERT-family layer, as plain functions.

Shapes: ``B`` batch, ``L`` current (padded) sequence length, ``D`` hidden size, ``h`` kept
heads, ``d`` head size. ``mask (B, L)`` is True on real tokens. Kept tokens are always packed to
the front of each row in their original order, so a shorter sequence is padded at the end.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...common_sparse import select_rows, threshold_rows, topk_rows
from .quant import apply_linear

__all__ = [
    "additive",
    "attention_output",
    "feed_forward",
    "head_magnitude",
    "head_rows",
    "keep_counts",
    "project_heads",
    "prune_tokens",
    "rotate",
    "score_rows",
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
    layer_norm: nn.Module | None,
    rows: torch.Tensor | None,
) -> torch.Tensor:
    """Output projection + residual (+ LayerNorm): ``context (B, h, L, d)`` -> ``(B, L, D)``.

    ``dense`` is the output linear; with ``rows`` only the kept heads' input columns are used.
    ``layer_norm=None`` for a pre-norm layer (the norm came before the attention).
    """
    batch, _, length, _ = context.shape
    merged = context.transpose(1, 2).reshape(batch, length, -1)
    out = apply_linear(merged, dense, cols=rows) + residual
    return out if layer_norm is None else layer_norm(out)


def feed_forward(
    x: torch.Tensor, layer: nn.Module, linears: Mapping[str, nn.Module], layout: Any = None
) -> torch.Tensor:
    """The layer's FFN block with its residual and norm, ``(B, L, D)`` -> ``(B, L, D)``.

    ``layer`` is the HF layer (activation, norm); ``linears["ffn_in"]`` and
    ``linears["ffn_out"]`` its two linears (``nn.Linear`` or ``Int8Linear``); ``layout`` its
    ``EncoderLayout`` (default BERT): post-norm ``norm(ffn(x) + x)`` or pre-norm
    ``x + ffn(norm(x))``, with a gated FFN ``act(a) * g`` where the family has one.
    """
    if layout is None:
        from .layouts import EncoderLayout

        layout = EncoderLayout
    norm, act = layout.norm(layer, 1), layout.activation(layer)
    inner = apply_linear(norm(x) if layout.pre_norm else x, linears["ffn_in"])
    if layout.gated:
        value, gate = inner.chunk(2, dim=-1)
        inner = act(value) * gate
    else:
        inner = act(inner)
    out = apply_linear(inner, linears["ffn_out"])
    return x + out if layout.pre_norm else norm(out + x)


def rotate(query: torch.Tensor, key: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary position embedding of ``query, key (B, h, L, d)`` with ``cos, sin (B, L, d)``
    (halves rotated, computed in float32 as HF does)."""
    cos, sin = cos[:, None].float(), sin[:, None].float()

    def turn(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        first, second = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-second, first], dim=-1) * sin

    return turn(query).to(query.dtype), turn(key).to(key.dtype)


def additive(bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """An attention bias as float logits to add: a bool "allowed" mask becomes 0 / -inf."""
    if bias is None or bias.dtype != torch.bool:
        return bias
    return torch.zeros(bias.shape, dtype=dtype).masked_fill_(~bias, float("-inf"))


def score_rows(mask: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Query rows that estimate token importance: per sequence ``min(n, count)`` real rows
    evenly spaced over its ``n`` real tokens (first and last included).

    ``mask (B, L)`` real tokens (anywhere in the row). Returns ``rows (B, q)`` int64 and
    ``weights (B, q)`` float (0 on the padding of a sequence with fewer than ``q`` rows), with
    ``q = min(count, longest sequence)``. A sequence's rows do not depend on its batch.
    """
    lengths = mask.sum(dim=1)  # (B,)
    width = int(min(count, int(lengths.max())))
    slots = torch.arange(width, dtype=torch.float64)
    used = lengths.clamp(max=width)  # (B,) rows per sequence
    span = (lengths - 1).clamp(min=0).double() / (used - 1).clamp(min=1).double()
    rank = torch.round(slots[None, :] * span[:, None]).long()  # (B, q) j-th real token
    valid = slots[None, :] < used[:, None]
    rows = torch.searchsorted(mask.long().cumsum(dim=1), rank + 1)  # its position in the row
    return rows.masked_fill(~valid, 0), valid.to(torch.float32)


@functools.lru_cache(maxsize=64)
def _even_rows(length: int, count: int) -> torch.Tensor:
    """``score_rows`` of a sequence of ``length`` real tokens, as one ``(q,)`` index.

    Built outside inference mode whatever the caller's mode: the cached index is shared, and
    an inference tensor could not be saved for backward by a later call under autograd."""
    with torch.inference_mode(False):
        return score_rows(torch.ones(1, length, dtype=torch.bool), count)[0][0]


def token_importance(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor, count: int,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention probability received by each key token ``(B, L)``, summed over heads and
    over at most ``count`` evenly spaced real query rows per sequence (``score_rows``).

    Sampling keeps the cost at ``O(count * L)`` per head, small next to the fused SDPA that
    produces the layer output: ``query, key (B, h, L, d)``, ``mask (B, L)``; ``bias`` the
    layer's attention term (float ``(B, h or 1, L, L)`` logits, or bool allowed pairs), so the
    scores are the probabilities the layer's attention used.
    """
    batch, heads, length, head_size = query.shape
    extra = additive(bias, query.dtype)
    if extra is None and bool(mask.all()):  # no padding: every sequence samples the same rows
        sampled = query if count >= length else query.index_select(2, _even_rows(length, count))
        logits = (sampled * head_size**-0.5) @ key.transpose(-1, -2)  # (B, h, q, L)
        return torch.softmax(logits, dim=-1).sum(dim=(1, 2))
    if count >= length:  # every row: no gather needed
        rows, weights = None, mask.to(query.dtype)
        sampled = query
    else:
        rows, weights = score_rows(mask, count)
        index = rows[:, None, :, None].expand(batch, heads, rows.shape[1], head_size)
        sampled = torch.gather(query, 2, index)  # (B, h, q, d)
    logits = (sampled * head_size**-0.5) @ key.transpose(-1, -2)  # (B, h, q, L)
    if extra is not None:
        if rows is not None:
            index = rows[:, None, :, None].expand(batch, extra.shape[1], rows.shape[1], length)
            extra = torch.gather(extra.expand(batch, -1, -1, -1), 2, index)
        logits = logits + extra
    if not bool(mask.all()):
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    probs = torch.softmax(logits, dim=-1).reshape(batch, -1, length)  # (B, h*q, L)
    weights = weights.to(probs.dtype).repeat(1, heads)  # padded query rows count 0
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
