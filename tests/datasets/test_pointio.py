"""KITTI .bin and LAS/LAZ readers, and dispatch on the file suffix."""

import sys

import numpy as np
import pytest

from edgeinfer.datasets import (
    POINT_SUFFIXES,
    generate_scene,
    read_kitti_bin,
    read_las,
    read_points,
    write_kitti_bin,
    write_ply,
)


@pytest.fixture(scope="module")
def scan():
    return generate_scene(0, beams=8, azimuth_step_deg=1.0)


def test_kitti_round_trip_is_bit_identical(tmp_path, scan):
    path = tmp_path / "000000.bin"
    write_kitti_bin(path, scan.points, scan.intensity)
    assert path.stat().st_size == 16 * scan.num_points
    back = read_kitti_bin(path)
    assert back["points"].dtype == np.float32 and back["intensity"].dtype == np.float32
    assert np.array_equal(back["points"], scan.points)
    assert np.array_equal(back["intensity"], scan.intensity)


def test_kitti_matches_the_raw_float32_layout(tmp_path):
    records = np.arange(8, dtype="<f4").reshape(2, 4)
    records.tofile(tmp_path / "raw.bin")
    back = read_kitti_bin(tmp_path / "raw.bin")
    assert np.array_equal(back["points"], records[:, :3])
    assert np.array_equal(back["intensity"], records[:, 3])


def test_kitti_write_without_intensity_stores_zeros(tmp_path):
    write_kitti_bin(tmp_path / "a.bin", np.ones((3, 3)))
    assert np.array_equal(read_kitti_bin(tmp_path / "a.bin")["intensity"], np.zeros(3))


def test_truncated_kitti_file_names_the_file_and_its_size(tmp_path, scan):
    path = tmp_path / "cut.bin"
    write_kitti_bin(path, scan.points[:10], scan.intensity[:10])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"cut\.bin: size 157 bytes is not a multiple of 16"):
        read_kitti_bin(path)


def test_kitti_write_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"points must have shape \(N, 3\)"):
        write_kitti_bin(tmp_path / "a.bin", np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"intensity must have shape \(3,\)"):
        write_kitti_bin(tmp_path / "a.bin", np.zeros((3, 3)), np.zeros(4))
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike"):
        write_kitti_bin(3, np.zeros((3, 3)))


@pytest.mark.parametrize("name", ["scan.bin", "scan.BIN", "scan.ply"])
def test_read_points_dispatches_on_suffix(tmp_path, scan, name):
    path = tmp_path / name
    if name.lower().endswith(".bin"):
        write_kitti_bin(path, scan.points, scan.intensity)
    else:
        write_ply(path, scan.points, intensity=scan.intensity, labels=scan.labels)
    back = read_points(path)
    assert np.array_equal(back["points"], scan.points)
    assert np.array_equal(back["intensity"], scan.intensity)


def test_read_points_lists_supported_suffixes(tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown point-cloud suffix '\.pcd'.*\.bin, \.ply, \.las"
    ):
        read_points(tmp_path / "cloud.pcd")
    assert POINT_SUFFIXES == (".bin", ".ply", ".las", ".laz")


def test_missing_laspy_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "laspy", None)  # makes `import laspy` raise ImportError
    with pytest.raises(ImportError, match=r"pip install edgeinfer\[data\]"):
        read_las(tmp_path / "cloud.las")
    (tmp_path / "cloud.laz").write_bytes(b"LASF")  # a file exists: only laspy is missing
    with pytest.raises(ImportError, match="laspy"):
        read_points(tmp_path / "cloud.laz")


def _write_las(laspy, path, points, intensity, scale=0.001):
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.offsets = points.min(axis=0)
    header.scales = np.array([scale, scale, scale])
    las = laspy.LasData(header)
    las.x, las.y, las.z = points[:, 0], points[:, 1], points[:, 2]
    las.intensity = intensity
    las.write(path)


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_round_trip(tmp_path, scan, suffix):
    laspy = pytest.importorskip("laspy")
    if suffix == ".laz":
        pytest.importorskip("lazrs")
    points = scan.points.astype(np.float64)
    raw_intensity = np.round(scan.intensity * 65535).astype(np.uint16)
    path = tmp_path / f"cloud{suffix}"
    _write_las(laspy, path, points, raw_intensity)
    back = read_points(path)
    assert back["points"].dtype == np.float32 and back["points"].shape == points.shape
    assert np.abs(back["points"] - points).max() <= 0.0005 + 1e-5  # half the 1 mm scale
    assert np.allclose(back["intensity"], raw_intensity / 65535.0, atol=1e-7)


def test_las_float64_keeps_georeferenced_precision(tmp_path):
    laspy = pytest.importorskip("laspy")
    points = np.array([[500_000.123, 4_200_000.456, 100.789], [500_001.001, 4_200_002.002, 99.5]])
    _write_las(laspy, tmp_path / "utm.las", points, np.array([0, 65535], dtype=np.uint16))
    back = read_las(tmp_path / "utm.las", dtype=np.float64)
    assert np.abs(back["points"] - points).max() < 1e-6
    assert back["intensity"].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"dtype must be np\.float32 or np\.float64"):
        read_las(tmp_path / "utm.las", dtype=np.int32)


def test_corrupt_las_file_raises_naming_the_file(tmp_path):
    pytest.importorskip("laspy")
    path = tmp_path / "junk.las"
    path.write_bytes(b"this is not a LAS file at all" * 20)
    with pytest.raises(ValueError, match=r"junk\.las: not a readable LAS/LAZ file"):
        read_las(path)
