"""The split that ``SpAttenConfig``'s defaults are tuned on, kept apart from the reported sets.

The benchmark reports quality on the polarity sentences and the 50 Lee *test* documents
(``nlp/bench.py``); settings are chosen here, on the 300 Lee *background* documents and on
sentences cut from them, by how well a pruned encoder keeps the unpruned one's embeddings:
``doc cos`` / ``sent cos`` mean cosine to the unpruned embedding, ``doc rho`` / ``sent rho``
Spearman correlation of all pairwise similarities with the unpruned model's (1 = the same
similarity ranking). Documents run with ``max_length=512``, as the benchmark does.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .spatten.config import SpAttenConfig

__all__ = ["tuning_quality", "tuning_texts"]

_MODEL = "all-MiniLM-L6-v2"
_SENTENCES = 600
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@functools.lru_cache(maxsize=1)
def tuning_texts() -> tuple[list[str], list[str]]:
    """``(documents, sentences)``: the Lee background corpus (300 documents) and its first
    600 sentences of at least five words. Raises ImportError without gensim."""
    from ..datasets.text import read_lee_corpus

    documents = read_lee_corpus("background")
    sentences = [
        piece.strip()
        for document in documents
        for piece in _SENTENCE_END.split(document)
        if len(piece.split()) >= 5
    ]
    return documents, sentences[:_SENTENCES]


@functools.lru_cache(maxsize=1)
def _unpruned():
    from .encoder import load_encoder

    encoder = load_encoder(_MODEL, max_length=512)
    documents, sentences = tuning_texts()
    return encoder, encoder.encode(documents, 8), encoder.encode(sentences, 32)


def _agreement(embeddings: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    from .quality import similarity_matrix, spearman

    upper = np.triu_indices(len(reference), 1)
    pairs = similarity_matrix(embeddings, embeddings)[upper]
    rho = spearman(similarity_matrix(reference, reference)[upper], pairs)
    return float((embeddings * reference).sum(axis=1).mean()), rho


def tuning_quality(config: SpAttenConfig) -> dict[str, float]:
    """``doc cos``, ``doc rho``, ``sent cos``, ``sent rho`` of ``config`` against the unpruned
    all-MiniLM-L6-v2 on the tuning split (see the module docstring).

    Raises:
        TypeError: ``config`` not a SpAttenConfig. ImportError: gensim or the model missing.
    """
    if not isinstance(config, SpAttenConfig):
        raise TypeError(f"config must be a SpAttenConfig; got {type(config).__name__}")
    from .encoder import Encoder

    base, ref_docs, ref_sentences = _unpruned()
    encoder = Encoder(base.model, base.tokenizer, spatten=config, max_length=base.max_length)
    documents, sentences = tuning_texts()
    doc_cos, doc_rho = _agreement(encoder.encode(documents, 8), ref_docs)
    sent_cos, sent_rho = _agreement(encoder.encode(sentences, 32), ref_sentences)
    return {"doc cos": doc_cos, "doc rho": doc_rho, "sent cos": sent_cos, "sent rho": sent_rho}
