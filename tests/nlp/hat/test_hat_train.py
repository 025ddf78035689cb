"""Sandwich distillation on the tiny supernet: it learns, it resumes exactly, checkpoints."""

import pytest
import torch

from edgeinfer.nlp.hat import (
    QualityEvaluator,
    SubConfig,
    SuperEncoder,
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    train_supernet,
)
from tests.nlp.hat.conftest import SENTENCES, WordTokenizer, make_tiny_bert, tiny_batches

QUICK = TrainConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=1, random_subnets=1,
                    max_length=16, checkpoint_every=2)  # fmt: skip


def _fresh():
    return SuperEncoder.from_model(make_tiny_bert(), calibration=tiny_batches(),
                                   tokenizer=WordTokenizer())  # fmt: skip


def _weights(supernet):
    return {k: v.clone() for k, v in supernet.model.state_dict().items()}


def test_distillation_improves_the_small_subnetworks(one_thread):
    """Held-out similarity quality against the original model: measured 0.74 -> 0.91 for the
    smallest and 0.73 -> 0.86 for a mid sub-network; the largest stays >= 0.97."""
    supernet = _fresh()
    teacher = make_tiny_bert()
    small = [supernet.space.smallest(), SubConfig(32, (32, 32), (2, 2))]
    texts = SENTENCES[30:]  # not trained on
    before = QualityEvaluator(supernet, texts, teacher=teacher)
    scores = [before(c) for c in small]
    config = TrainConfig(steps=40, batch_size=16, lr=2e-3, warmup_steps=2, max_length=16)
    result = train_supernet(supernet, SENTENCES[:30], config, progress=False)
    after = QualityEvaluator(supernet, texts, teacher=teacher)
    assert result.steps == 40 and len(result.losses) == 40
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    for config_, score in zip(small, scores, strict=True):
        assert after(config_) > score + 0.05, (config_, score, after(config_))
    assert after(supernet.space.largest()) > 0.95


def test_resumed_training_equals_one_uninterrupted_run(tmp_path, one_thread):
    whole = _fresh()
    train_supernet(whole, SENTENCES, QUICK, progress=False)
    path = tmp_path / "ckpt.pt"
    interrupted = _fresh()
    stopped = train_supernet(interrupted, SENTENCES,
                             TrainConfig(**{**vars(QUICK), "time_limit_s": 0.0}),
                             checkpoint=path, progress=False)  # fmt: skip
    assert stopped.steps == 1 and path.is_file()
    resumed = _fresh()
    seen = []
    done = train_supernet(resumed, SENTENCES, QUICK, checkpoint=path, progress=False,
                          on_step=lambda step, loss: seen.append(step))  # fmt: skip
    assert seen == [1, 2, 3, 4, 5] and done.steps == 6
    expected = _weights(whole)
    for key, value in _weights(resumed).items():
        assert torch.equal(value, expected[key]), key


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    trained = _fresh()
    train_supernet(trained, SENTENCES, TrainConfig(**{**vars(QUICK), "steps": 2}),
                   progress=False)  # fmt: skip
    path = save_checkpoint(tmp_path / "s.pt", trained, None, 2, QUICK)
    other = _fresh()
    assert load_checkpoint(path, other) == 2
    expected = _weights(trained)
    assert all(torch.equal(v, expected[k]) for k, v in _weights(other).items())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="not a readable supernet checkpoint"):
        load_checkpoint(junk, other)
    torch.save({"format": "something else"}, junk)
    with pytest.raises(ValueError, match="is not a supernet checkpoint"):
        load_checkpoint(junk, other)
    with pytest.raises(FileNotFoundError, match=r"train one with scripts/train_hat\.py"):
        load_checkpoint(tmp_path / "none.pt", other)
    from edgeinfer._checkpoint import write_envelope
    from edgeinfer.nlp.spatten.adapt import save_adaptation

    payload = torch.load(path, weights_only=True)  # one envelope, like every engine's files
    assert payload["edgeinfer_checkpoint"] == 1 and payload["model"] == "hat-supernet"
    save_adaptation(junk, {"x": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"holds a 'spatten-adaptation', not a 'hat-supernet'"):
        load_checkpoint(junk, other)
    write_envelope(junk, engine="pointcloud", model="minkunet", config={}, state_dict={})
    with pytest.raises(ValueError, match=r"a pointcloud checkpoint .*load it with "
                                         r"edgeinfer\.pointcloud\.load_pretrained"):
        load_checkpoint(junk, other)
    legacy = {"format": "edgeinfer.hat.supernet/1", "step": 2, "space": payload["config"]["space"],
              "model": payload["state_dict"], "channels": payload["extra"]["channels"],
              "optimizer": None}  # fmt: skip
    torch.save(legacy, junk)  # the pre-envelope layout still loads
    assert load_checkpoint(junk, _fresh()) == 2
    legacy["model"] = {k: v for k, v in legacy["model"].items() if "layer.0." not in k}
    torch.save(legacy, junk)
    with pytest.raises(ValueError, match=r"does not fit this supernet's model: missing keys"):
        load_checkpoint(junk, _fresh())


def test_bad_training_input():
    with pytest.raises(ValueError, match="batch_size must be >= 3"):
        TrainConfig(batch_size=2)
    with pytest.raises(ValueError, match="at least 3 texts"):
        train_supernet(_fresh(), ["a b", "c d"], QUICK, progress=False)
