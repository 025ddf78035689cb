"""``Embedder``: texts in, float32 sentence embeddings out (ids kept beside them).

The batch unit of the text engine (see ``edgeinfer._predictor``): it loads its encoder (SpAtten
pruning when asked) once where it runs. A text's embedding does not depend on the other texts
of its batch (``Encoder.encode``), so any batching or worker split gives the same vectors::

    embedder = Embedder("all-MiniLM-L6-v2", spatten=SpAttenConfig())
    vectors = embedder.embed(["a text", "another"])                 # (2, 384) float32
    embedder({"id": ["a", "b"], "text": ["a text", "another"]})      # {"id": ..., "embedding": ...}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from .._predictor import Predictor
from .spatten import SpAttenConfig

__all__ = ["Embedder"]


class Embedder(Predictor):
    """Sentence embeddings with a text checkpoint.

    Args:
        model: what ``nlp.load_pretrained`` accepts (an offline name or a local HF folder).
        spatten: a :class:`SpAttenConfig` to prune tokens and heads (``None``: the dense model).
        max_length: tokens kept per text (default: the model's).
        batch_size: texts per forward inside one call (does not change the results).
        text_column: the batch protocol's text column (``"text"``).
        threads: torch threads per call (``None``: the process's setting).

    Raises:
        ValueError / TypeError: a bad ``spatten``, ``batch_size`` or ``threads``; at the first
            call, the errors of ``load_pretrained``.
    """

    engine = "nlp"

    def __init__(
        self, model: str | os.PathLike[str] = "all-MiniLM-L6-v2", *,
        spatten: SpAttenConfig | None = None, max_length: int | None = None,
        batch_size: int = 32, text_column: str = "text", threads: int | None = None,
    ) -> None:
        super().__init__(threads)
        if spatten is not None and not isinstance(spatten, SpAttenConfig):
            raise TypeError(f"spatten must be None or a SpAttenConfig; got "
                            f"{type(spatten).__name__}")  # fmt: skip
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
        self.model, self.spatten, self.max_length = os.fspath(model), spatten, max_length
        self.batch_size, self.text_column = batch_size, str(text_column)

    def describe(self) -> Mapping[str, Any]:
        spatten = None if self.spatten is None else asdict(self.spatten)
        return {**super().describe(), "model": self.model, "spatten": spatten,
                "max_length": self.max_length}  # fmt: skip

    def _load(self):
        from .pretrained import load_pretrained

        return load_pretrained(self.model, spatten=self.spatten, max_length=self.max_length)

    @property
    def dim(self) -> int:
        """Embedding size (loads the model)."""
        return self.loaded[0].dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings ``(N, D)`` float32 of ``texts``, in order (``(0, D)`` for none).

        Raises:
            TypeError: ``texts`` not a sequence of str (names the first bad index).
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str, not one str; wrap it: [text]")
        texts = [t.item() if isinstance(t, np.str_) else t for t in texts]
        with self._running() as (encoder, _):
            return encoder.encode(texts, batch_size=self.batch_size)

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        """The batch protocol (a loop, Dask, Ray Data's ``map_batches``): ``{text_column:
        [...], other columns...}`` -> the other columns unchanged (ids, say) plus
        ``"embedding"`` ``(B, D)`` float32; the text column is dropped."""
        if not isinstance(batch, Mapping) or self.text_column not in batch:
            raise TypeError(f"batch must be a mapping with a {self.text_column!r} column; got "
                            f"{type(batch).__name__} with columns "
                            f"{sorted(batch) if isinstance(batch, Mapping) else '-'}")  # fmt: skip
        out = {k: v for k, v in batch.items() if k != self.text_column}
        out["embedding"] = self.embed(list(batch[self.text_column]))
        return out
