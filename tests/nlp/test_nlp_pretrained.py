"""The text engine's load_pretrained / create_model surface: families built from a config,
pooling read from sentence-transformers files (SpAtten per family: test_nlp_layouts)."""

import json
import shutil

import numpy as np
import pytest
import torch

from edgeinfer import PretrainedInfo, TextInput
from edgeinfer.nlp import (
    create_model,
    list_models,
    load_encoder,
    load_pretrained,
    read_pooling,
    resolve_encoder_path,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 64, "vocab_size": 120, "max_position_embeddings": 64}


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
