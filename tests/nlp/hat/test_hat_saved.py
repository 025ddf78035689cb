"""A sub-network saved with save_pretrained reloads (load_subnet) and computes exactly the same."""

import json
import shutil

import pytest
import torch

from edgeinfer.nlp.hat import SubConfig, load_subnet
from tests.nlp.hat.conftest import tiny_batches

# mixed widths per layer: what BertModel.from_pretrained cannot rebuild on its own
CONFIG = SubConfig(48, (64, 32), (3, 2))


@pytest.fixture(scope="module")
def saved(tiny_supernet, tmp_path_factory):
    exported = tiny_supernet.export_subnet(CONFIG)
    folder = tmp_path_factory.mktemp("subnet")
    exported.save_pretrained(folder)
    return exported, folder


def test_reloaded_subnet_equals_the_exported_one_exactly(saved):
    from transformers import BertModel

    exported, folder = saved
    model, config = load_subnet(folder)
    assert type(model) is BertModel and not model.training
    assert config == CONFIG
    assert model.config.hat_channels == exported.config.hat_channels
    batch = tiny_batches(count=1)[0]
    with torch.no_grad():
        want = exported(**batch).last_hidden_state
        got = model(**batch).last_hidden_state
    assert got.shape == (4, 12, CONFIG.embed_dim)
    torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_plain_from_pretrained_cannot_rebuild_it(saved):
    from transformers import BertModel

    with pytest.raises(RuntimeError, match="mismatch"):
        BertModel.from_pretrained(saved[1])


def test_reloaded_largest_config_has_the_exported_weights(tiny_supernet, tmp_path):
    exported = tiny_supernet.export_subnet(tiny_supernet.space.largest())
    exported.save_pretrained(tmp_path)
    model, config = load_subnet(tmp_path)
    assert config == tiny_supernet.space.largest()
    reloaded = model.state_dict()
    for key, value in exported.state_dict().items():
        assert torch.equal(reloaded[key], value), key


def test_missing_or_incomplete_directory_names_the_path_and_what_was_expected(saved, tmp_path):
    _, folder = saved
    absent = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist; expected .*config\.json"):
        load_subnet(absent)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no config\.json in .*empty; expected"):
        load_subnet(empty)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    shutil.copy(folder / "config.json", no_weights / "config.json")
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors .* in .*no_weights"):
        load_subnet(no_weights)


def test_foreign_or_damaged_files_are_rejected(saved, tmp_path):
    _, folder = saved
    values = json.loads((folder / "config.json").read_text())
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({k: v for k, v in values.items()
                                                   if k != "hat_subconfig"}))  # fmt: skip
    with pytest.raises(ValueError, match="no hat_subconfig: not a HAT sub-network export"):
        load_subnet(plain)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        load_subnet(corrupt)
    inconsistent = tmp_path / "inconsistent"
    inconsistent.mkdir()
    (inconsistent / "config.json").write_text(json.dumps({**values, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match="inconsistent: hat_subconfig"):
        load_subnet(inconsistent)
    other_shape = tmp_path / "other_shape"
    other_shape.mkdir()
    shutil.copy(folder / "model.safetensors", other_shape / "model.safetensors")
    changed = {**values, "hat_subconfig": {**values["hat_subconfig"], "ffn_dims": [32, 32]}}
    (other_shape / "config.json").write_text(json.dumps(changed))
    with pytest.raises(ValueError, match=r"other shapes \['encoder\.layer\.0\.intermediate"):
        load_subnet(other_shape)
