"""Readers of the small English text corpora shipped with gensim's test data.

The files are read from the installed ``gensim`` package (located with
``importlib.util.find_spec``; gensim itself is imported only by ``read_wikipedia_paragraphs``,
for its wiki-markup filter); nothing is copied or downloaded. Formats: ``lee_background.cor`` /
``lee.cor`` hold one news document per line and ``pang_lee_polarity.cor`` holds one
movie-review sentence per line prefixed with ``__label__pos`` or ``__label__neg``; all are
Windows-1252 encoded (``£``, ``é``). The Wikipedia excerpt is a bz2 XML dump of 206 pages
(about 100 articles, the rest redirects).
"""

from __future__ import annotations

import bz2
import functools
import importlib.util
import re
from pathlib import Path

import numpy as np

__all__ = [
    "POLARITY_LABELS",
    "gensim_test_data_dir",
    "read_lee_corpus",
    "read_lee_human_similarity",
    "read_polarity_sentences",
    "read_wikipedia_paragraphs",
]

POLARITY_LABELS = ("neg", "pos")  # label 0, label 1
_LEE_FILES = {"background": "lee_background.cor", "test": "lee.cor"}
_LABEL_PREFIX = "__label__"
_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_NOT_PROSE = re.compile(r"^[=*|!{}#:;\[]")  # headings, lists, tables, leftover markup
_LEFTOVER = re.compile(r"'{2,}|\(\s*[,;]?\s*\)")  # bold/italic quotes, emptied brackets


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


@functools.lru_cache(maxsize=4)
def read_wikipedia_paragraphs(min_words: int = 30) -> tuple[tuple[str, str], ...]:
    """Prose paragraphs of the English Wikipedia excerpt in gensim's test data.

    Article pages only (namespace 0, redirects skipped), markup removed with gensim's
    ``filter_wiki`` (and the bold/italic quotes and emptied brackets it leaves); a paragraph
    is kept when it has at least ``min_words`` words and does not start like a heading, list,
    table or leftover markup. Whitespace is collapsed.

    Returns:
        ``((title, paragraph), ...)`` in dump order (3,648 paragraphs of 100 articles at the
        default ``min_words``); cached per process.

    Raises:
        ValueError: ``min_words`` < 1. ImportError: gensim is missing.
        FileNotFoundError: the excerpt is missing from gensim's test data.
    """
    if isinstance(min_words, bool) or not isinstance(min_words, int) or min_words < 1:
        raise ValueError(f"min_words must be an int >= 1; got {min_words!r}")
    path = gensim_test_data_dir() / _WIKI_FILE
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path.name} is missing from {path.parent}")
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    paragraphs = []
    with bz2.open(path) as stream:
        for title, text, _ in extract_pages(stream, filter_namespaces=("0",)):
            text = _LEFTOVER.sub("", filter_wiki(text))
            if text.lstrip().lower().startswith("#redirect"):
                continue
            for block in _PARAGRAPH_BREAK.split(text):
                words = block.split()
                if len(words) >= min_words and not _NOT_PROSE.match(words[0]):
                    paragraphs.append((title, " ".join(words)))
    return tuple(paragraphs)
