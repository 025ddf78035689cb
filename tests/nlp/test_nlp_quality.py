"""Downstream quality measures on tiny hand-made cases."""

import numpy as np
import pytest

from edgeinfer.nlp.quality import (
    overlap_at_k,
    probe_accuracy,
    rank_average,
    similarity_matrix,
    spearman,
)


def test_overlap_at_k_counts_shared_top_documents():
    reference = np.array([[0.9, 0.8, 0.1, 0.0], [0.0, 0.1, 0.2, 0.3]])
    same = overlap_at_k(reference, reference, k=2)
    swapped = overlap_at_k(reference, np.array([[0.9, 0.0, 0.8, 0.1], [0.3, 0.2, 0.1, 0.0]]), k=2)
    assert same == 1.0 and swapped == pytest.approx(0.25)  # 1/2 shared, then 0/2
    with pytest.raises(ValueError, match=r"k must be in \[1, N=4\]"):
        overlap_at_k(reference, reference, k=5)


def test_spearman_uses_average_ranks_for_ties():
    assert rank_average(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="equal size"):
        spearman([1, 2], [1, 2, 3])


def test_probe_separates_separable_classes_and_detects_a_broken_setting():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    embeddings = rng.normal(size=(40, 5)) + 4 * (labels[:, None] - 0.5) * np.array([1, 0, 0, 0, 0])
    assert probe_accuracy(embeddings, labels, embeddings, folds=4) == 1.0
    flipped = embeddings.copy()
    flipped[:, 0] = -flipped[:, 0]
    assert probe_accuracy(embeddings, labels, flipped, folds=4) <= 0.1
    with pytest.raises(ValueError, match="same N texts"):
        probe_accuracy(embeddings, labels, embeddings[:10])


def test_similarity_matrix_is_cosine():
    sims = similarity_matrix(np.array([[2.0, 0.0]]), np.array([[1.0, 1.0], [0.0, 3.0]]))
    np.testing.assert_allclose(sims, [[2**-0.5, 0.0]])
