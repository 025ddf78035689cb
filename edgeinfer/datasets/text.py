"""Readers of the small English text corpora shipped with gensim's test data.

The files are read from the installed ``gensim`` package (located with
``importlib.util.find_spec``, so gensim itself is never imported); nothing is copied or
downloaded. Formats: ``lee_background.cor`` / ``lee.cor`` hold one news document per line
and ``pang_lee_polarity.cor`` holds one movie-review sentence per line prefixed with
``__label__pos`` or ``__label__neg``. All are Windows-1252 encoded (``£``, ``é``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

__all__ = [
    "POLARITY_LABELS",
    "gensim_test_data_dir",
    "read_lee_corpus",
    "read_lee_human_similarity",
    "read_polarity_sentences",
]

POLARITY_LABELS = ("neg", "pos")  # label 0, label 1
_LEE_FILES = {"background": "lee_background.cor", "test": "lee.cor"}
_LABEL_PREFIX = "__label__"


def gensim_test_data_dir() -> Path:
    """The ``gensim/test/test_data`` folder of the installed gensim.

    Raises:
        ImportError: gensim is not installed (install ``edgeinfer[data]``).
        FileNotFoundError: gensim is installed without its test data.
    """
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the text corpora are read from gensim's test data, but gensim is not installed; "
            "install it with `pip install edgeinfer[data]`"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"gensim is installed but has no test data at {folder}; reinstall it with "
            f"`pip install --force-reinstall gensim`"
        )
    return folder


def _read_lines(path: Path, encoding: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path.name} is missing from {path.parent}")
    return [line.strip() for line in path.read_text(encoding=encoding).splitlines()]


def read_lee_corpus(split: str = "background") -> list[str]:
    """The Lee news corpus: one document per item, in file order.

    Args:
        split: ``"background"`` (300 documents, ``lee_background.cor``) or ``"test"``
            (50 documents, ``lee.cor``).

    Raises:
        ValueError: an unknown split. ImportError: gensim is missing.
    """
    if split not in _LEE_FILES:
        raise ValueError(f"split must be one of {sorted(_LEE_FILES)}; got {split!r}")
    lines = _read_lines(gensim_test_data_dir() / _LEE_FILES[split], encoding="cp1252")
    return [line for line in lines if line]


def read_polarity_sentences() -> tuple[list[str], np.ndarray]:
    """Pang & Lee movie-review sentences and their labels (0 = negative, 1 = positive).

    Returns:
        ``(sentences, labels)``: ``labels`` is ``(N,)`` int64 aligned with ``sentences``.

    Raises:
        ImportError: gensim is missing. ValueError: a line without a known label prefix.
    """
    path = gensim_test_data_dir() / "pang_lee_polarity.cor"
    sentences, labels = [], []
    for number, line in enumerate(_read_lines(path, encoding="cp1252"), start=1):
        if not line:
            continue
        label, _, sentence = line.partition(" ")
        name = label.removeprefix(_LABEL_PREFIX)
        if not label.startswith(_LABEL_PREFIX) or name not in POLARITY_LABELS:
            raise ValueError(
                f"{path.name} line {number}: expected a '__label__pos' or '__label__neg' "
                f"prefix; got {label[:30]!r}"
            )
        sentences.append(sentence.strip())
        labels.append(POLARITY_LABELS.index(name))
    return sentences, np.asarray(labels, dtype=np.int64)


def read_lee_human_similarity() -> np.ndarray:
    """Mean human similarity ``(50, 50)`` in [0, 1] of the Lee test documents, symmetric
    (gensim's ``similarities0-1.txt``, aligned with ``read_lee_corpus("test")``).

    Raises:
        ImportError: gensim is missing. ValueError: the file is not a 50 x 50 matrix.
    """
    path = gensim_test_data_dir() / "similarities0-1.txt"
    matrix = np.loadtxt(path, dtype=np.float64)
    if matrix.shape != (50, 50):
        raise ValueError(f"{path.name}: expected a 50 x 50 matrix; got {matrix.shape}")
    upper = np.triu(matrix)
    return upper + np.triu(matrix, 1).T
