"""The text engine's load_pretrained / create_model surface: families built from a config,
SpAtten at keep ratio 1 against the HF forward, pooling read from sentence-transformers files."""

import json
import shutil

import numpy as np
import pytest
import torch

from edgeinfer import PretrainedInfo, TextInput
from edgeinfer.nlp import (
    SpAttenConfig,
    apply_spatten,
    create_model,
    list_models,
    load_encoder,
    load_pretrained,
    read_pooling,
    resolve_encoder_path,
)
from tests.nlp.tolerances import IDENTITY_ATOL

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 64, "vocab_size": 120, "max_position_embeddings": 64}
SPATTEN_FAMILIES = ["bert", "roberta", "xlm-roberta"]  # the BERT layout apply_spatten reads
OTHER_LAYOUTS = {"distilbert": {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64,
                                "vocab_size": 120}, "mpnet": TINY}  # fmt: skip


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (3, 14), generator=generator)
    mask = torch.ones(3, 14, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    return ids, mask


@pytest.mark.parametrize("family", SPATTEN_FAMILIES)
def test_spatten_at_keep_one_equals_the_hf_forward(family):
    torch.manual_seed(0)
    model = create_model(family, **TINY)
    ids, mask = _batch()
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pruned = apply_spatten(model, SpAttenConfig(token_keep=1.0, head_keep=1.0, quant=None))
        out = pruned(input_ids=ids, attention_mask=mask)
    assert out.mask.equal(mask.bool())
    real = mask.bool().unsqueeze(-1)
    torch.testing.assert_close(out.hidden * real, reference * real, atol=IDENTITY_ATOL, rtol=0)
    # the comparison can fail: another seed's weights give other hidden states
    torch.manual_seed(1)
    other = create_model(family, **TINY)
    with torch.no_grad():
        assert not torch.allclose(other(input_ids=ids, attention_mask=mask).last_hidden_state,
                                  reference, atol=1e-3)  # fmt: skip


@pytest.mark.parametrize("family", sorted(OTHER_LAYOUTS))
def test_other_layouts_are_refused_with_a_clear_error(family):
    model = create_model(family, **OTHER_LAYOUTS[family])
    with pytest.raises(TypeError, match=r"BERT"):
        apply_spatten(model, SpAttenConfig(token_keep=0.5))


def test_create_model_names_families_and_checks_the_name():
    assert {"bert", "roberta", "distilbert", "mpnet", "xlm-roberta"} <= set(list_models())
    with pytest.raises(ValueError, match=r"unknown text model family 'robreta'.*'roberta'"):
        create_model("robreta")


def test_load_pretrained_reads_pooling_and_matches_load_encoder():
    texts = ["a short sentence", "another, slightly longer sentence about tokens"]
    encoder, info = load_pretrained("all-MiniLM-L6-v2")
    assert isinstance(info, PretrainedInfo) and info.engine == "nlp" and info.model == "bert"
    assert info.input == TextInput(info.input.tokenizer, 256, "mean", True)
    assert info.source == "all-MiniLM-L6-v2" and info.format == "huggingface"
    plain = load_encoder("all-MiniLM-L6-v2")
    np.testing.assert_array_equal(encoder.encode(texts), plain.encode(texts))
    with pytest.raises(ValueError, match=r"unknown text checkpoint source 'gguf'"):
        load_pretrained("all-MiniLM-L6-v2", source="gguf")


def _tiny_folder(tmp_path, modules, pooling_modes):
    """A random-initialised BERT of the MiniLM tokenizer's vocabulary, saved with its files."""
    shipped = resolve_encoder_path("all-MiniLM-L6-v2")
    folder = tmp_path / "tiny"
    torch.manual_seed(0)
    model = create_model("bert", **{**TINY, "vocab_size": 30522})
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(shipped / name, folder / name)
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_modes))
    return folder, model


def test_pooling_follows_the_sentence_transformers_files(tmp_path):
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"}]  # fmt: skip
    modes = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    folder, model = _tiny_folder(tmp_path, modules, modes)
    assert read_pooling(folder) == ("cls", False)
    encoder, info = load_pretrained(folder)
    assert info.input.pooling == "cls" and not info.input.normalize
    inputs, _ = encoder.tokenize(["pooled from the first token"])
    with torch.no_grad():
        cls = model(input_ids=inputs["input_ids"],
                    attention_mask=inputs["attention_mask"]).last_hidden_state[:, 0]
    np.testing.assert_allclose(encoder.encode(["pooled from the first token"]), cls.numpy(),
                               atol=1e-6)  # fmt: skip
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(ValueError, match=r"pooling \['max_tokens'\] is not supported"):
        load_pretrained(folder)
    (folder / "modules.json").unlink()
    assert read_pooling(folder) is None and load_pretrained(folder)[1].input.pooling == "mean"
