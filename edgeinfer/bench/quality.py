"""Quality measures a benchmark case can report next to its timings."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["cosine_similarity", "max_abs_error", "relative_error"]


def _as_array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0:
        raise ValueError(f"{name} is empty; quality needs at least one value")
    return array


def _pair(reference: Any, result: Any) -> tuple[np.ndarray, np.ndarray]:
    ref = _as_array(reference, "reference")
    out = _as_array(result, "result")
    if ref.shape != out.shape:
        raise ValueError(
            f"reference and result must have the same shape; got {ref.shape} and {out.shape}"
        )
    return ref, out


def max_abs_error(reference: Any, result: Any) -> float:
    """Largest absolute difference between two arrays/tensors of the same shape."""
    ref, out = _pair(reference, result)
    return float(np.max(np.abs(ref - out)))


def relative_error(reference: Any, result: Any) -> float:
    """``||result - reference|| / ||reference||`` (Frobenius norm)."""
    ref, out = _pair(reference, result)
    norm = float(np.linalg.norm(ref))
    diff = float(np.linalg.norm(out - ref))
    return diff / norm if norm > 0 else diff


def cosine_similarity(reference: Any, result: Any) -> float:
    """Cosine similarity of the two arrays flattened (1.0 = same direction)."""
    ref, out = _pair(reference, result)
    ref, out = ref.ravel(), out.ravel()
    denom = float(np.linalg.norm(ref) * np.linalg.norm(out))
    return float(ref @ out) / denom if denom > 0 else float(np.array_equal(ref, out))
