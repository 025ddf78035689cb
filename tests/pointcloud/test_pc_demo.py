"""The point-cloud demo runs end to end on a generated scene and on a user's file."""

import numpy as np
from edgeinfer.demos import pointcloud as demo

from edgeinfer.datasets import generate_scene, read_ply, write_ply


def test_demo_segments_a_generated_scene(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--runs", "1", "--beams", "32"]) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "latency" in printed and "voxels" in printed
    ply = tmp_path / f"scene_seed{demo.DEFAULT_SEED}_segmented.ply"
    png = tmp_path / f"scene_seed{demo.DEFAULT_SEED}_bev.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = read_ply(ply)
    scan = generate_scene(demo.DEFAULT_SEED, beams=32)
    assert len(written["points"]) == len(scan.points)
    assert np.array_equal(written["colors"], demo.CLASS_COLORS[written["labels"]])


def test_demo_segments_a_user_file_without_iou(tmp_path, capsys):
    scan = generate_scene(3, beams=16)
    source = tmp_path / "my_scan.ply"
    write_ply(source, scan.points, intensity=scan.intensity)
    out = tmp_path / "out"
    assert demo.main(["--input", str(source), "--out", str(out), "--runs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "mIoU" not in printed and "my_scan" in printed
    assert (out / "my_scan_segmented.ply").is_file() and (out / "my_scan_bev.png").is_file()


def test_demo_runs_an_spvnas_checkpoint_with_its_own_voxels_and_classes(tmp_path, capsys):
    import torch

    from edgeinfer.pointcloud.importers import SEMANTIC_KITTI_CLASSES
    from tests.pointcloud.test_pc_import import CR_CHANNELS, spvnas_state

    checkpoint = tmp_path / "minkunet_kitti.pt"
    torch.save({"model": spvnas_state(CR_CHANNELS)}, checkpoint)
    out = tmp_path / "out"
    assert demo.main(["--checkpoint", str(checkpoint), "--out", str(out), "--runs", "1",
                      "--beams", "16"]) == 0
    printed = capsys.readouterr().out
    assert "(torchsparse), 19 classes, features x, y, z, intensity, round_shift voxels" in printed
    assert "mIoU" not in printed and "no IoU" in printed  # other classes than the scene's
    written = read_ply(out / f"scene_seed{demo.DEFAULT_SEED}_segmented.ply")
    assert written["labels"].max() < len(SEMANTIC_KITTI_CLASSES)
    colors = demo.class_colors(len(SEMANTIC_KITTI_CLASSES))
    assert np.array_equal(written["colors"], colors[written["labels"]])
    assert len(np.unique(colors, axis=0)) == len(SEMANTIC_KITTI_CLASSES)


def test_demo_runs_a_spconv_checkpoint_once_its_features_are_named(tmp_path, capsys):
    import pytest
    import torch
    from edgeinfer.demos import DemoUsageError

    from edgeinfer.pointcloud.models import MinkUNet, UNetConfig
    from tests.pointcloud.test_pc_import import _spconv_state

    checkpoint = tmp_path / "spconv_minkunet.pt"
    torch.save(_spconv_state(MinkUNet(UNetConfig(4, 6, width=0.25)), seed=0), checkpoint)
    out = tmp_path / "out"
    with pytest.raises(DemoUsageError, match=r"cannot compute \['feature_0'.*pass --features"):
        demo.main(["--checkpoint", str(checkpoint), "--out", str(out), "--runs", "1"])
    with pytest.raises(DemoUsageError, match=r"features= names 2 columns"):
        demo.main(["--checkpoint", str(checkpoint), "--out", str(out), "--features", "x,y"])
    with pytest.raises(DemoUsageError, match="are for an imported --checkpoint"):
        demo.main(["--out", str(out), "--voxel-size", "0.1"])
    features = "intensity,z / 2 m,range / 50 m,1"
    assert demo.main(["--checkpoint", str(checkpoint), "--out", str(out), "--runs", "1",
                      "--beams", "16", "--features", features, "--voxel-size", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "(spconv), 6 classes, features intensity, z / 2 m" in printed
    assert "voxels of 0.2 m" in printed
