"""Text corpora read from the installed gensim test data (no download; gensim imported only
for the Wikipedia markup filter)."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from edgeinfer.datasets import text

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gensim") is None, reason="gensim (edgeinfer[data]) not installed"
)


def test_lee_corpus_splits():
    background = text.read_lee_corpus()
    test = text.read_lee_corpus("test")
    assert len(background) == 300 and len(test) == 50
    assert background[0].startswith("Hundreds of people have been forced to vacate their homes")
    assert all(isinstance(doc, str) and doc == doc.strip() and doc for doc in background)


def test_unknown_lee_split_is_rejected():
    with pytest.raises(ValueError, match=r"split must be one of \['background', 'test'\]"):
        text.read_lee_corpus("train")


def test_polarity_sentences_and_balanced_labels():
    sentences, labels = text.read_polarity_sentences()
    assert len(sentences) == labels.shape[0] == 200
    assert labels.dtype == np.int64 and set(np.unique(labels)) == {0, 1}
    assert np.bincount(labels).tolist() == [100, 100]
    assert sentences[0] == "simplistic , silly and tedious ."
    assert labels[0] == 0 and not any(s.startswith("__label__") for s in sentences)
    assert any("é" in s for s in sentences)  # Windows-1252 decoded, not mangled


def test_missing_gensim_says_what_to_install(monkeypatch):
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install edgeinfer\[data\]"):
        text.read_lee_corpus()


def test_reading_does_not_import_gensim():
    code = (
        "import sys; from edgeinfer.datasets import text; text.read_polarity_sentences(); "
        "print('gensim' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_lee_human_similarity_is_a_symmetric_50_by_50_matrix_in_unit_range():
    matrix = text.read_lee_human_similarity()
    assert matrix.shape == (50, 50) and matrix.dtype == np.float64
    assert np.array_equal(matrix, matrix.T)
    assert matrix.min() >= 0.0 and matrix.max() <= 1.0
    assert np.allclose(np.diag(matrix), 1.0)


def test_wikipedia_paragraphs_are_markup_free_prose_of_the_excerpt():
    paragraphs = text.read_wikipedia_paragraphs()
    titles = {title for title, _ in paragraphs}
    assert len(paragraphs) > 3000 and len(titles) == 100
    assert paragraphs[0][0] == "Anarchism"
    assert paragraphs[0][1].startswith("Anarchism is a political philosophy")
    for _, paragraph in paragraphs:
        assert len(paragraph.split()) >= 30 and paragraph == " ".join(paragraph.split())
        assert "''" not in paragraph and "[[" not in paragraph and "{{" not in paragraph
    assert not any(title.lower().startswith("accessiblecomputing") for title in titles)
    longer = text.read_wikipedia_paragraphs(min_words=100)
    assert 0 < len(longer) < len(paragraphs)
    assert set(longer) <= set(paragraphs)


def test_wikipedia_min_words_is_checked():
    with pytest.raises(ValueError, match=r"min_words must be an int >= 1; got 0"):
        text.read_wikipedia_paragraphs(min_words=0)
