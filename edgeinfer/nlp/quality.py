"""Downstream quality of a (pruned, quantised) encoder measured against the unpruned one.

- ``probe_accuracy``: a linear probe (multinomial logistic regression, L2-regularised, fitted
  in torch with L-BFGS) trained on *reference* embeddings with k-fold cross-validation and
  evaluated on the held-out fold of *another* setting's embeddings of the same texts: how much
  a classifier built on the full model loses when fed the cheap model's embeddings.
- ``overlap_at_k``: mean top-k retrieval agreement between two query x document score matrices.
- ``spearman``: rank correlation (average ranks for ties) of two score arrays.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "fit_probe",
    "overlap_at_k",
    "probe_accuracy",
    "rank_average",
    "similarity_matrix",
    "spearman",
]


def _as_2d(name: str, value: np.ndarray) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array; got shape {array.shape}")
    return array


def fit_probe(
    features: np.ndarray, labels: np.ndarray, *, l2: float = 1e-3, steps: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression: ``features (N, D)``, ``labels (N,)`` int in [0, C).

    Returns ``(weight (D, C), bias (C,))``; predict with ``argmax(x @ weight + bias)``.
    Deterministic (zero init, full-batch L-BFGS).

    Raises:
        ValueError: mismatched shapes or negative labels.
    """
    x = torch.from_numpy(_as_2d("features", features))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    if y.shape != (x.shape[0],) or int(y.min()) < 0:
        raise ValueError(
            f"labels must be (N,) non-negative ints with N = {x.shape[0]}; got {tuple(y.shape)}"
        )
    classes = int(y.max()) + 1
    weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(x @ weight + bias, y) + l2 * weight.pow(2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(loss)
    return weight.detach().numpy(), bias.detach().numpy()


def probe_accuracy(
    reference: np.ndarray,
    labels: np.ndarray,
    evaluated: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
) -> float:
    """Cross-validated accuracy (0..1) of probes fitted on ``reference (N, D)`` embeddings and
    tested on the held-out rows of ``evaluated (N, D)`` (same texts, another setting).

    ``evaluated is reference`` gives the plain cross-validated accuracy of the reference.

    Raises:
        ValueError: shapes differ, or ``folds`` not in [2, N].
    """
    reference, evaluated = _as_2d("reference", reference), _as_2d("evaluated", evaluated)
    labels = np.asarray(labels, dtype=np.int64)
    if reference.shape != evaluated.shape or labels.shape != (reference.shape[0],):
        raise ValueError(
            f"reference, evaluated and labels must describe the same N texts; got shapes "
            f"{reference.shape}, {evaluated.shape}, {labels.shape}"
        )
    if not 2 <= folds <= reference.shape[0]:
        raise ValueError(f"folds must be in [2, N={reference.shape[0]}]; got {folds}")
    order = np.random.default_rng(seed).permutation(reference.shape[0])
    correct = 0
    for held in np.array_split(order, folds):
        train = np.setdiff1d(order, held)
        weight, bias = fit_probe(reference[train], labels[train])
        predicted = np.argmax(evaluated[held] @ weight + bias, axis=1)
        correct += int((predicted == labels[held]).sum())
    return correct / reference.shape[0]


def similarity_matrix(queries: np.ndarray, documents: np.ndarray) -> np.ndarray:
    """Cosine similarities ``(Q, N)`` of ``queries (Q, D)`` and ``documents (N, D)``."""
    q, d = _as_2d("queries", queries), _as_2d("documents", documents)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return q @ d.T


def overlap_at_k(reference: np.ndarray, scores: np.ndarray, k: int = 5) -> float:
    """Mean fraction (0..1) of each query's top-``k`` documents under ``reference (Q, N)``
    scores that are also in its top-``k`` under ``scores (Q, N)``. Exclude a query's own
    document beforehand (e.g. set it to ``-inf``). Ties break towards the lower index.

    Raises:
        ValueError: shapes differ or ``k`` not in [1, N].
    """
    reference, scores = _as_2d("reference", reference), _as_2d("scores", scores)
    if reference.shape != scores.shape:
        raise ValueError(f"score shapes differ: {reference.shape} vs {scores.shape}")
    if not 1 <= k <= reference.shape[1]:
        raise ValueError(f"k must be in [1, N={reference.shape[1]}]; got {k}")
    top_ref = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    shared = [len(set(a) & set(b)) for a, b in zip(top_ref.tolist(), top.tolist(), strict=True)]
    return float(np.mean(shared)) / k


def rank_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values (N,)``; tied values share their average rank."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(1, values.size + 1)
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=unique.size)
    counts = np.bincount(inverse, minlength=unique.size)
    return (sums / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally sized arrays (flattened), in [-1, 1].

    Raises:
        ValueError: sizes differ or fewer than 2 values; a constant array gives ``nan``.
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.size != b.size or a.size < 2:
        raise ValueError(f"spearman needs two arrays of equal size >= 2; got {a.size}, {b.size}")
    ra, rb = rank_average(a), rank_average(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")
