"""SpAtten on every encoder family it reads (BERT, RoBERTa, XLM-R, DistilBERT, MPNet,
ModernBERT): tiny random models built from a config, checked against the HF model itself.

- keep ratios 1, no quantisation: the HF forward (within float noise);
- token pruning after layer 0: the HF layers run with the pruned tokens masked out of every
  later layer's keys, with the layers' own position terms (MPNet's relative bias, ModernBERT's
  rotary positions and local window) at the tokens' original positions;
- head pruning and int8 linears run on each family.
"""

import pytest
import torch

from edgeinfer.nlp import SpAttenConfig, apply_spatten, create_model
from edgeinfer.nlp.spatten import QuantConfig
from edgeinfer.nlp.spatten.layouts import encoder_layout
from tests.nlp.tolerances import IDENTITY_ATOL

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
TINY = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
        "intermediate_size": 64, "vocab_size": 120, "max_position_embeddings": 64}
CONFIGS = {
    "bert": TINY, "roberta": TINY, "xlm-roberta": TINY, "mpnet": TINY,
    "distilbert": {"dim": 32, "n_layers": 3, "n_heads": 4, "hidden_dim": 64, "vocab_size": 120},
    # a local window (3 positions each side) shorter than the batch, and a global layer
    "modernbert": {**TINY, "local_attention": 6, "global_attn_every_n_layers": 2,
                   "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1,
                   "sep_token_id": 2},
}  # fmt: skip
FAMILIES = sorted(CONFIGS)


def _model(family: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(family, **CONFIGS[family])


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (3, 14), generator=generator)
    mask = torch.ones(3, 14, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    return ids, mask


def test_each_family_has_its_layout():
    assert {f: encoder_layout(_model(f)).family for f in FAMILIES} == {
        "bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "distilbert",
        "mpnet": "mpnet", "modernbert": "modernbert"}
    with pytest.raises(TypeError, match="DistilBERT, MPNet, ModernBERT"):
        apply_spatten(torch.nn.Linear(2, 2))


def test_the_modernbert_window_is_exercised():
    ids, mask = _batch()
    torch.manual_seed(0)
    wide = create_model("modernbert", **{**CONFIGS["modernbert"], "local_attention": 64})
    with torch.no_grad():
        local = _model("modernbert")(input_ids=ids, attention_mask=mask).last_hidden_state
        full = wide(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(local[0], full[0], atol=1e-3)  # row 0: 14 tokens, window 3


@pytest.mark.parametrize("family", FAMILIES)
def test_keep_one_equals_the_hf_forward(family):
    model = _model(family)
    ids, mask = _batch()
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state
        out = apply_spatten(model, SpAttenConfig(token_keep=1.0, head_keep=1.0, quant=None))(
            input_ids=ids, attention_mask=mask)
    real = mask.bool().unsqueeze(-1)
    assert out.mask.equal(mask.bool())
    torch.testing.assert_close(out.hidden * real, reference * real, atol=IDENTITY_ATOL, rtol=0)
    with torch.no_grad():  # the comparison can fail: other weights give other states
        other = _model(family, seed=1)(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(other * real, reference * real, atol=1e-3)


def _hf_layers_with_pruned_keys(model, family, ids, mask, kept):
    """HF's own layers: layer 0 on every token, later layers with only ``kept (B, L)`` as keys
    (the tokens SpAtten dropped after layer 0), positions unchanged."""
    layout = encoder_layout(model)
    batch, length = ids.shape
    hidden = layout.embed({"input_ids": ids, "attention_mask": mask})
    positions = torch.arange(length).expand(batch, length)
    neg = torch.finfo(hidden.dtype).min
    for index, layer in enumerate(layout.layers):
        keys = mask.bool() if index == 0 else kept
        allowed = keys[:, None, None, :].expand(batch, 1, length, length)
        if family == "modernbert":
            _, window = layout.terms(index, positions, hidden)
            if window is not None:
                allowed = allowed & window
            additive = torch.zeros(allowed.shape).masked_fill(~allowed, neg)
            rope = layout.base.rotary_emb(hidden, positions, layer.attention_type)
            hidden = layer(hidden, attention_mask=additive, position_embeddings=rope)
        else:
            additive = torch.zeros(allowed.shape).masked_fill(~allowed, neg)
            if family == "mpnet":
                bias = layout.base.encoder.compute_position_bias(hidden)
                out = layer(hidden, additive, bias)
            else:
                out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
    return layout.finish(hidden)


@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_tokens_leave_the_kept_ones_where_they_were(family):
    model = _model(family)
    ids, mask = _batch(seed=2)
    config = SpAttenConfig(token_keep=0.5, prune_layers=(0,), quant=None)
    with torch.no_grad():
        out = apply_spatten(model, config)(input_ids=ids, attention_mask=mask)
        kept = torch.zeros(mask.shape, dtype=torch.bool)
        for row in range(len(ids)):
            kept[row, out.positions[row][out.mask[row]]] = True
        assert kept.sum() < mask.sum()  # tokens were pruned
        reference = _hf_layers_with_pruned_keys(model, family, ids, mask, kept)
    for row in range(len(ids)):
        positions = out.positions[row][out.mask[row]]
        torch.testing.assert_close(out.hidden[row][out.mask[row]], reference[row, positions],
                                   atol=1e-5, rtol=0)  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_head_pruning_and_int8_linears_run_on_each_family(family):
    model = _model(family)
    ids, mask = _batch()
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state
        heads = apply_spatten(model, SpAttenConfig(token_keep=1.0, head_keep=0.5, quant=None))(
            input_ids=ids, attention_mask=mask)
        int8 = apply_spatten(model, SpAttenConfig(
            token_keep=1.0, quant=QuantConfig(linear_int8=True, attn_bits=None)))(
            input_ids=ids, attention_mask=mask)
    assert heads.stats.heads[-1] == 2 and heads.stats.heads[0] == 4
    real = mask.bool()
    cosine = torch.nn.functional.cosine_similarity(int8.hidden[real], reference[real], dim=-1)
    assert int8.stats.linear_bits == 8 and float(cosine.min()) > 0.99, float(cosine.min())


@pytest.mark.parametrize("family", ["mpnet", "modernbert"])
def test_progressive_attention_is_refused_where_attention_has_position_terms(family):
    with pytest.raises(ValueError, match=rf"a {family} encoder has them"):
        apply_spatten(_model(family), SpAttenConfig(quant=QuantConfig(attn_bits=4)))


@pytest.mark.parametrize("family", ["distilbert", "mpnet", "modernbert"])
def test_a_saved_folder_of_each_new_family_loads_and_prunes(tmp_path, family):
    """load_pretrained on a local folder: the HF forward at keep 1, fewer tokens at keep 0.5."""
    import shutil

    import numpy as np

    from edgeinfer.nlp import load_pretrained, resolve_encoder_path

    shipped = resolve_encoder_path("all-MiniLM-L6-v2")
    vocab = {"vocab_size": 30522} if family != "modernbert" else {
        "vocab_size": 30522, "pad_token_id": 0, "cls_token_id": 101, "sep_token_id": 102,
        "bos_token_id": 101, "eos_token_id": 102}
    torch.manual_seed(0)
    model = create_model(family, **{**CONFIGS[family], **vocab})
    model.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(shipped / name, tmp_path / name)
    texts = ["pruning keeps the tokens that matter", "a second, rather longer sentence to pad"]
    plain, info = load_pretrained(tmp_path)
    assert info.model == family.replace("-", "_") or info.model == family
    whole, _ = load_pretrained(tmp_path, spatten=SpAttenConfig(token_keep=1.0, quant=None))
    np.testing.assert_allclose(whole.encode(texts), plain.encode(texts), atol=1e-5)
    half, _ = load_pretrained(tmp_path, spatten=SpAttenConfig(token_keep=0.5, quant=None))
    inputs, _ = half.tokenize(texts)
    out = half.spatten(**inputs)
    assert out.stats.ffn_tokens[-1] < int(inputs["attention_mask"].sum())
    assert np.isfinite(half.encode(texts)).all()
