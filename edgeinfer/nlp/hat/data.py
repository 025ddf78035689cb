"""The offline text the HAT engine trains, searches and reports on, split three ways.

Sentences of the Lee background corpus (300 news documents, split at sentence ends) and the
Pang & Lee polarity sentences (200), both from gensim's installed test data:

- ``train``: documents 0-239 and 160 polarity sentences (distillation, importance);
- ``valid``: documents 240-269 and 20 polarity sentences (search fitness);
- ``test``: documents 270-299 and 20 polarity sentences (reported quality).

Fragments of fewer than 4 words are dropped. Deterministic; cached per process.
"""

from __future__ import annotations

import functools
import re

__all__ = ["SPLITS", "corpus_splits", "split_sentences"]

SPLITS = ("train", "valid", "test")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])")
_DOC_RANGES = {"train": range(0, 240), "valid": range(240, 270), "test": range(270, 300)}


def split_sentences(text: str, min_words: int = 4) -> list[str]:
    """``text`` cut after ``.``, ``!`` or ``?`` followed by a capital, digit or quote;
    pieces shorter than ``min_words`` words are dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.split()) >= min_words]


@functools.lru_cache(maxsize=1)
def corpus_splits() -> dict[str, tuple[str, ...]]:
    """``{"train": (...), "valid": (...), "test": (...)}`` sentences (see module docstring).

    Raises:
        ImportError: gensim (which ships the corpora) is not installed.
    """
    from ...datasets.text import read_lee_corpus, read_polarity_sentences

    documents = read_lee_corpus("background")
    polarity, _ = read_polarity_sentences()
    splits: dict[str, tuple[str, ...]] = {}
    for name in SPLITS:
        sentences = [s for i in _DOC_RANGES[name] for s in split_sentences(documents[i])]
        fold = {"train": range(0, 8), "valid": (8,), "test": (9,)}[name]
        sentences += [s for i, s in enumerate(polarity) if i % 10 in fold]
        splits[name] = tuple(sentences)
    return splits
