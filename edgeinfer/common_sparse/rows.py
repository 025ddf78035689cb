"""Row selection: keep a subset of rows (top-k, threshold) and scatter results back.

What token pruning (keep the important token rows) and frame/pixel skipping (recompute only
changed rows) need. Kept indices are always sorted ascending, so the kept rows keep their
original order.
"""

from __future__ import annotations

import torch

__all__ = ["scatter_rows", "select_rows", "threshold_rows", "topk_rows"]


def _check_index(index: torch.Tensor, n_rows: int, name: str = "index") -> None:
    if not isinstance(index, torch.Tensor) or index.dtype != torch.int64 or index.dim() != 1:
        got = (
            f"{index.dtype} of shape {tuple(index.shape)}"
            if isinstance(index, torch.Tensor) else type(index).__name__
        )
        raise TypeError(f"{name} must be a 1-D int64 torch.Tensor of row numbers; got {got}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_rows):
        raise ValueError(
            f"{name} must hold row numbers in [0, {n_rows}); got values in "
            f"[{int(index.min())}, {int(index.max())}]"
        )


def _check_scores(scores: torch.Tensor) -> None:
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or scores.dim() != 1:
        got = (
            f"{scores.dtype} of shape {tuple(scores.shape)}"
            if isinstance(scores, torch.Tensor) else type(scores).__name__
        )
        raise TypeError(f"scores must be a 1-D floating torch.Tensor (N,); got {got}")
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores must not contain NaN; replace them (e.g. nan_to_num) first")


def select_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``x[index]``: ``x (N, ...)``, ``index (M,)`` int64 in ``[0, N)`` -> ``(M, ...)``.

    Raises:
        TypeError: ``x`` not a tensor with >= 1 dim, or ``index`` not 1-D int64.
        ValueError: an index out of range.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise TypeError(f"x must be a torch.Tensor of shape (N, ...); got {type(x).__name__}")
    _check_index(index, x.shape[0])
    return x.index_select(0, index)


def topk_rows(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``(k,)`` int64 of the ``k`` highest ``scores (N,)``, sorted ascending.

    Ties break towards the lower index, so the result is deterministic.

    Raises:
        TypeError: bad ``scores`` or ``k`` not an int.
        ValueError: ``k`` outside ``[0, N]`` or NaN scores.
    """
    _check_scores(scores)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int; got {type(k).__name__}")
    if not 0 <= k <= scores.shape[0]:
        raise ValueError(f"k must be in [0, {scores.shape[0]}] (the number of rows); got {k}")
    order = torch.sort(scores, descending=True, stable=True).indices
    return torch.sort(order[:k]).values


def threshold_rows(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Indices (ascending, int64) of rows with ``scores >= threshold``.

    Raises:
        TypeError: bad ``scores`` or a non-number threshold.
        ValueError: NaN scores or NaN threshold.
    """
    _check_scores(scores)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number; got {type(threshold).__name__}")
    if threshold != threshold:
        raise ValueError("threshold must not be NaN")
    return torch.nonzero(scores >= threshold).reshape(-1)


def scatter_rows(base: torch.Tensor, index: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """A copy of ``base (N, ...)`` with ``rows (M, ...)`` written at ``index (M,)``.

    ``base`` is not modified; rows not in ``index`` keep their ``base`` values.

    Raises:
        TypeError: bad ``index`` or dtype mismatch.
        ValueError: shape mismatch, an index out of range, or a repeated index.
    """
    if not isinstance(base, torch.Tensor) or not isinstance(rows, torch.Tensor) or base.dim() < 1:
        raise TypeError("base and rows must be torch.Tensors of shape (N, ...) and (M, ...)")
    _check_index(index, base.shape[0])
    if rows.shape != (index.shape[0], *base.shape[1:]):
        raise ValueError(
            f"rows must have shape (len(index), *base.shape[1:]) = "
            f"{(index.shape[0], *base.shape[1:])}; got {tuple(rows.shape)}"
        )
    if rows.dtype != base.dtype:
        raise TypeError(f"rows must have base's dtype {base.dtype}; got {rows.dtype}")
    if index.numel() > 1 and torch.unique(index).numel() != index.numel():
        raise ValueError("index must not repeat a row: two results cannot go to one position")
    return base.index_copy(0, index, rows)
