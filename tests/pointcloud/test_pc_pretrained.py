"""Point-cloud checkpoints: the envelope round trip for every registered model, the 0.1 files,
and a clear error for each kind of wrong file."""

import numpy as np
import pytest
import torch

from edgeinfer import PointInput, PretrainedInfo
from edgeinfer._checkpoint import write_envelope
from edgeinfer.datasets import SCENE_CLASSES, generate_scene
from edgeinfer.pointcloud import (
    PointTensor,
    create_model,
    list_models,
    load_checkpoint,
    load_pretrained,
    save_checkpoint,
    sparse_collate,
)
from edgeinfer.pointcloud.models import SPVCNN
from edgeinfer.pointcloud.pretrained import LEGACY_FORMAT
from edgeinfer.pointcloud.train import voxelize_scan

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
META = {"class_names": list(SCENE_CLASSES), "voxel_size": 0.2}


@pytest.fixture(scope="module")
def small_scan():
    return generate_scene(1000, beams=16)


def _tiny(name="minkunet", seed=0):
    torch.manual_seed(seed)
    return create_model(name, 4, len(SCENE_CLASSES), width=0.125, blocks=1).eval()


def _logits(model, scan, voxel_size=0.2):
    sample = voxelize_scan(scan.points, scan.intensity, voxel_size)
    with torch.no_grad():
        if isinstance(model, SPVCNN):
            feats = torch.rand(len(scan.points), 4, generator=torch.Generator().manual_seed(1))
            return model(PointTensor.from_points(scan.points, feats, voxel_size))
        return model(sparse_collate([(sample.coords, sample.feats)])).feats


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_round_trips_bit_equal(tmp_path, small_scan, name):
    model = _tiny(name)
    path = save_checkpoint(tmp_path / "sub" / f"{name}.pt", model, {**META, "training": {"a": 1}})
    loaded, info = load_pretrained(path)
    assert isinstance(info, PretrainedInfo) and info.engine == "pointcloud" and info.model == name
    assert info.class_names == SCENE_CLASSES and info.input == PointInput(0.2, info.input.features)
    assert info.metadata["training"] == {"a": 1} and info.format == "edgeinfer/1"
    assert info.source == str(path) and loaded.config == model.config and not loaded.training
    assert torch.equal(_logits(model, small_scan), _logits(loaded, small_scan))
    again, same = load_checkpoint(path)
    assert same == info and type(again) is type(model)


def test_info_round_trips_and_is_frozen(tmp_path):
    info = PretrainedInfo("pointcloud", "minkunet", "semantic segmentation", SCENE_CLASSES,
                          PointInput(0.05, ("x", "y", "z", "intensity"), "round_shift"),
                          metadata={"k": [1, 2]})  # fmt: skip
    assert PretrainedInfo.from_dict(info.to_dict()) == info
    with pytest.raises(AttributeError):
        info.model = "other"
    with pytest.raises(TypeError):
        info.metadata["k"] = 3
    path = save_checkpoint(tmp_path / "m.pt", _tiny(), info)
    assert load_pretrained(path)[1].input.quantize == "round_shift"


def test_files_of_edgeinfer_0_1_still_load(tmp_path, small_scan):
    model = _tiny()
    config = {**vars(model.config), "channels": list(model.config.channels)}
    meta = {"format": LEGACY_FORMAT, "model": "minkunet", "config": config, **META,
            "training": {"steps": 3}}  # fmt: skip
    torch.save({"meta": meta, "state_dict": model.state_dict()}, tmp_path / "old.pt")
    loaded, info = load_pretrained(tmp_path / "old.pt")
    assert info.format == LEGACY_FORMAT and info.metadata == {"training": {"steps": 3}}
    assert torch.equal(_logits(model, small_scan), _logits(loaded, small_scan))


def test_wrong_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"minkunet-scene.*did you mean 'minkunet-scenes'"):
        load_pretrained("minkunet-scene")
    with pytest.raises(FileNotFoundError, match=r"missing\.pt.*train one"):
        load_pretrained(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(3).bytes(3000))
    with pytest.raises(ValueError, match=r"corrupt\.pt is not a readable point-cloud checkpoint"):
        load_pretrained(corrupt)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"not a point-cloud checkpoint any importer knows"):
        load_pretrained(other)
    with pytest.raises(ValueError, match=r"not an edgeinfer checkpoint"):
        load_checkpoint(other)
    with pytest.raises(ValueError, match=r"unknown point-cloud checkpoint source 'torchsparce'"):
        load_pretrained(other, source="torchsparce")
    video = write_envelope(tmp_path / "video.pt", engine="video", model="tsm_resnet18",
                           config={}, state_dict={})  # fmt: skip
    with pytest.raises(ValueError, match=r"is a video checkpoint.*video\.load_pretrained"):
        load_pretrained(video)
    payload = torch.load(save_checkpoint(tmp_path / "ok.pt", _tiny(), META), weights_only=True)
    torch.save({**payload, "edgeinfer_checkpoint": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match=r"format version 99; this edgeinfer reads version 1"):
        load_pretrained(tmp_path / "future.pt")


def test_weights_that_do_not_fit_name_the_keys_and_both_shapes(tmp_path):
    path = save_checkpoint(tmp_path / "ok.pt", _tiny(), META)
    payload = torch.load(path, weights_only=True)
    state = payload["state_dict"]
    state.pop("classifier.weight")
    state["extra.weight"] = torch.zeros(1)
    state["classifier.bias"] = torch.zeros(7)
    torch.save(payload, path)
    with pytest.raises(ValueError, match=(r"classifier\.weight.*extra\.weight.*"
                                          r"classifier\.bias: file \(7,\) vs model \(6,\)")):
        load_pretrained(path)


def test_bad_save_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"info must hold \['voxel_size'\]"):
        save_checkpoint(tmp_path / "x.pt", _tiny(), {"class_names": ["a"]})
    with pytest.raises(TypeError, match=r"registered point-cloud model .*got Linear"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2), META)
    with pytest.raises(ValueError, match="2 class names for a 6-class model"):
        save_checkpoint(tmp_path / "x.pt", _tiny(), {**META, "class_names": ["a", "b"]})
    assert not (tmp_path / "x.pt").exists()


def test_round_shift_mode_reproduces_spvnas_voxels():
    from edgeinfer.pointcloud import sparse_quantize

    rng = np.random.default_rng(4)
    points = (rng.normal(size=(500, 4)) * 7).astype(np.float32)
    points[:5, :3] = [[0.025, 0.075, -0.125], [0.125, 0.0, 0.05], [1, 2, 3], [0, 0, 0], [9, 9, 9]]
    # SPVNAS (core/datasets/semantic_kitti.py): np.round(xyz / voxel), minus the minimum per axis
    expected = np.round(points[:, :3] / 0.05).astype(np.int32)
    expected -= expected.min(0, keepdims=True)
    coords, _, inverse = sparse_quantize(points, 0.05, mode="round_shift")
    np.testing.assert_array_equal(coords[inverse], expected)
    floor, _, floor_inverse = sparse_quantize(points, 0.05)
    assert not np.array_equal(floor[floor_inverse], expected)  # the two modes differ
    with pytest.raises(ValueError, match=r"mode must be 'floor' or 'round_shift'; got 'round'"):
        sparse_quantize(points, 0.05, mode="round")
