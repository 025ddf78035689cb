"""SuperEncoder on a tiny random BERT: reordering is exact, slicing matches references,
export gives a plain BertModel with the same outputs."""

import numpy as np
import pytest
import torch

from edgeinfer.nlp.hat import SubConfig, SuperEncoder, measure_importance
from tests.nlp.hat.conftest import make_tiny_bert, tiny_batches
from tests.nlp.hat.tolerances import EXPORT_ATOL, IDENTITY_ATOL, REFERENCE_ATOL

CONFIGS = [
    SubConfig(64, (96, 96, 96), (4, 4, 4)),
    SubConfig(64, (32, 96), (1, 3)),
    SubConfig(32, (48, 16, 80), (2, 4, 1)),
    SubConfig(16, (16,), (1,)),
    SubConfig(48, (96, 64, 32), (3, 2, 4)),
]


def _real(hidden, batch):
    return hidden[batch["attention_mask"].bool()]


@torch.no_grad()
def test_reordered_largest_config_reproduces_the_original_model(tiny_bert, tiny_supernet):
    for batch in tiny_batches(seed=7):
        reference = tiny_bert(**batch).last_hidden_state
        out = tiny_supernet(batch["input_ids"], batch["attention_mask"])
        torch.testing.assert_close(_real(out, batch), _real(reference, batch),
                                   atol=IDENTITY_ATOL, rtol=0)  # fmt: skip


def test_reordering_moved_things_and_puts_the_most_important_first(tiny_supernet):
    assert tiny_supernet.channels.tolist() != list(range(64))
    again = measure_importance(tiny_supernet.model, tiny_batches(), head_dim=16)
    assert again.channels.tolist() == list(range(64))
    for heads, neurons in zip(again.heads, again.neurons, strict=True):
        assert heads.tolist() == list(range(4))
        assert neurons.tolist() == list(range(96))


@torch.no_grad()
@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_exported_bert_model_equals_the_sliced_forward(tiny_supernet, config):
    from transformers import BertModel

    exported = tiny_supernet.export_subnet(config)
    assert type(exported) is BertModel and exported.config.hat_subconfig == config.to_dict()
    assert len(exported.encoder.layer) == config.layers
    assert exported.config.hidden_size == config.embed_dim
    for batch in tiny_batches(seed=3):
        sliced = tiny_supernet(batch["input_ids"], batch["attention_mask"], config)
        out = exported(**batch).last_hidden_state
        assert out.shape == sliced.shape == (*batch["input_ids"].shape, config.embed_dim)
        torch.testing.assert_close(_real(out, batch), _real(sliced, batch),
                                   atol=EXPORT_ATOL, rtol=0)  # fmt: skip


def test_export_of_the_largest_config_has_the_original_weights(tiny_bert, tiny_supernet):
    """Hidden channels are back in the original order (embeddings and LayerNorms equal
    exactly); heads and FFN neurons stay in importance order (a permutation of the values)."""
    exported = tiny_supernet.export_subnet(tiny_supernet.space.largest())
    original = tiny_bert.state_dict()
    for key, value in exported.state_dict().items():
        if key.startswith("embeddings.") or "LayerNorm" in key:
            assert torch.equal(value, original[key]), key
        else:
            assert torch.equal(value.flatten().sort().values,
                               original[key].flatten().sort().values), key  # fmt: skip


def _zeroed_reference(supernet, config):
    """The full (reordered) HF model with dropped heads/neurons zeroed and layers cut: the
    obvious meaning of a sub-network at full embedding width."""
    model = make_tiny_bert()
    model.load_state_dict(supernet.model.state_dict())
    with torch.no_grad():
        for layer, heads, ffn in zip(model.encoder.layer, config.heads, config.ffn_dims,
                                     strict=False):  # fmt: skip
            layer.attention.output.dense.weight[:, heads * 16 :] = 0
            layer.output.dense.weight[:, ffn:] = 0
    model.encoder.layer = model.encoder.layer[: config.layers]
    return model


@torch.no_grad()
@pytest.mark.parametrize("config", [c for c in CONFIGS if c.embed_dim == 64], ids=str)
def test_head_neuron_and_layer_slicing_equal_zeroing_them(tiny_supernet, config):
    reference = _zeroed_reference(tiny_supernet, config)
    batch = tiny_batches(seed=5)[0]
    expected = reference(**batch).last_hidden_state[..., torch.argsort(tiny_supernet.channels)]
    sliced = tiny_supernet(batch["input_ids"], batch["attention_mask"], config)
    torch.testing.assert_close(_real(sliced, batch), _real(expected, batch),
                               atol=REFERENCE_ATOL, rtol=0)  # fmt: skip


@torch.no_grad()
def test_sequences_in_a_padded_batch_equal_each_alone(tiny_supernet):
    batch = tiny_batches(seed=9)[0]
    config = CONFIGS[2]
    together = tiny_supernet(batch["input_ids"], batch["attention_mask"], config)
    for row in range(batch["input_ids"].shape[0]):
        length = int(batch["attention_mask"][row].sum())
        alone = tiny_supernet(batch["input_ids"][row : row + 1, :length],
                              batch["attention_mask"][row : row + 1, :length], config)  # fmt: skip
        torch.testing.assert_close(together[row, :length], alone[0], atol=EXPORT_ATOL, rtol=0)


@torch.no_grad()
def test_exported_subnet_goes_through_spatten_token_pruning(tiny_supernet):
    from edgeinfer.nlp import SpAttenConfig, apply_spatten

    exported = tiny_supernet.export_subnet(CONFIGS[1])
    batch = tiny_batches(seed=2)[0]
    identity = apply_spatten(exported, SpAttenConfig(token_keep=1.0, head_keep=1.0, quant=None))
    out = identity(**batch)
    reference = exported(**batch).last_hidden_state
    torch.testing.assert_close(out.hidden[out.mask], _real(reference, batch),
                               atol=EXPORT_ATOL, rtol=0)  # fmt: skip
    config = SpAttenConfig(token_keep=0.5, prune_layers=(0,), quant=None)
    pruned = apply_spatten(exported, config)(**batch)
    assert pruned.hidden.shape[1] < batch["input_ids"].shape[1]


def test_gradients_reach_only_the_sliced_weights(tiny_supernet):
    config = CONFIGS[3]
    batch = tiny_batches()[0]
    tiny_supernet.model.zero_grad()
    tiny_supernet(batch["input_ids"], batch["attention_mask"], config).sum().backward()
    ffn_in = tiny_supernet.model.encoder.layer[0].intermediate.dense.weight.grad
    assert ffn_in[:16, :16].abs().sum() > 0 and not ffn_in[16:].any() and not ffn_in[:, 16:].any()
    assert tiny_supernet.model.encoder.layer[1].intermediate.dense.weight.grad is None
    tiny_supernet.model.zero_grad()


def test_bad_input_is_rejected(tiny_supernet, tiny_bert):
    batch = tiny_batches()[0]
    with pytest.raises(ValueError, match=r"config.heads\[0\]=5 is outside"):
        tiny_supernet(batch["input_ids"], batch["attention_mask"], SubConfig(64, (96,), (5,)))
    with pytest.raises(ValueError, match=r"config\.embed_dim=40 is outside"):
        tiny_supernet.export_subnet(SubConfig(40, (96,), (4,)))
    with pytest.raises(ValueError, match=r"must both have shape \(B, L\)"):
        tiny_supernet(batch["input_ids"], batch["attention_mask"][:, :3])
    with pytest.raises(TypeError, match="must be a HuggingFace BERT encoder"):
        SuperEncoder.from_model(torch.nn.Linear(2, 2))
    from edgeinfer.nlp.hat import SearchSpace

    too_big = SearchSpace((16, 128), (1,), (16,), (1,), head_dim=16)
    with pytest.raises(ValueError, match=r"space\.embed_dims goes up to 128 but the model has 64"):
        SuperEncoder(tiny_bert, too_big)
    with pytest.raises(ValueError, match="calibration batches hold no real token"):
        empty = {"input_ids": batch["input_ids"], "attention_mask": 0 * batch["attention_mask"]}
        measure_importance(tiny_bert, [empty], 16)


def test_without_calibration_the_order_is_kept(tiny_bert):
    plain = SuperEncoder.from_model(tiny_bert)
    assert plain.channels.tolist() == list(range(64))
    ref = tiny_bert.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in plain.model.state_dict().items())
    assert np.isfinite(plain.model.embeddings.word_embeddings.weight.detach().numpy()).all()
