"""PLY round trips (ASCII and binary) and clear errors for corrupt or unsupported files."""

import numpy as np
import pytest

from edgeinfer.datasets import read_ply, write_ply


@pytest.fixture
def cloud():
    rng = np.random.default_rng(0)
    count = 257
    return {
        "points": (rng.normal(size=(count, 3)) * 40).astype(np.float32),
        "intensity": rng.random(count).astype(np.float32),
        "labels": rng.integers(-3, 20, count).astype(np.int64),
        "colors": rng.integers(0, 256, (count, 3)).astype(np.uint8),
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "ascii"])
def test_round_trip_keeps_every_field_bit_for_bit(tmp_path, cloud, binary):
    path = tmp_path / "cloud.ply"
    write_ply(path, cloud["points"], colors=cloud["colors"], labels=cloud["labels"],
              intensity=cloud["intensity"], binary=binary)  # fmt: skip
    back = read_ply(path)
    assert set(back) == set(cloud)
    for name, array in cloud.items():
        assert back[name].dtype == array.dtype, name
        assert np.array_equal(back[name], array), name


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "ascii"])
def test_points_only_and_empty_clouds(tmp_path, binary):
    points = np.arange(12, dtype=np.float64).reshape(4, 3) / 3
    write_ply(tmp_path / "a.ply", points, binary=binary)
    back = read_ply(tmp_path / "a.ply")
    assert list(back) == ["points"]
    assert np.array_equal(back["points"], points.astype(np.float32))
    write_ply(tmp_path / "empty.ply", np.zeros((0, 3)), intensity=np.zeros(0), binary=binary)
    empty = read_ply(tmp_path / "empty.ply")
    assert empty["points"].shape == (0, 3) and empty["intensity"].shape == (0,)


def test_header_is_plain_text_naming_the_properties(tmp_path, cloud):
    path = tmp_path / "cloud.ply"
    write_ply(path, cloud["points"], colors=cloud["colors"], labels=cloud["labels"])
    header = path.read_bytes().split(b"end_header")[0].decode()
    assert "format binary_little_endian 1.0" in header
    assert "element vertex 257" in header
    for line in ("float x", "int label", "uchar red", "uchar blue"):
        assert f"property {line}" in header


def test_reads_foreign_files_with_extra_properties_and_faces(tmp_path):
    text = (
        "ply\nformat ascii 1.0\ncomment made by hand\nelement vertex 2\n"
        "property double x\nproperty double y\nproperty double z\nproperty ushort confidence\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "1 2 3 7\n4 5 6 9\n3 0 1 1\n"
    )
    (tmp_path / "mesh.ply").write_text(text)
    back = read_ply(tmp_path / "mesh.ply")
    assert np.array_equal(back["points"], [[1, 2, 3], [4, 5, 6]])
    assert back["confidence"].dtype == np.uint16 and back["confidence"].tolist() == [7, 9]


def _write(tmp_path, content: bytes):
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    return path


HEADER = b"ply\nformat %s 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"PK\x03\x04 not a ply", "not a PLY file"),
        (HEADER % b"ascii" + b"property float z\n", "no 'end_header' line"),
        (
            HEADER % b"ascii" + b"property float z\nbogus line\nend_header\n",
            "bad PLY header line 7",
        ),
        (
            HEADER % b"binary_big_endian" + b"property float z\nend_header\n",
            "unsupported PLY format",
        ),
        (
            HEADER % b"ascii" + b"end_header\n1 2\n3 4\n5 6\n",
            "must be distinct and include x, y, z",
        ),
        (
            HEADER % b"ascii" + b"property list uchar int z\nend_header\n",
            "unsupported vertex property",
        ),
        (HEADER % b"ascii" + b"property half z\nend_header\n", "unsupported vertex property"),
        (b"ply\nformat ascii 1.0\nelement face 0\nend_header\n", "must start with a 'vertex'"),
        (HEADER % b"ascii" + b"property float z\nend_header\n1 2 3\n4 5 6\n", "truncated"),
        (HEADER % b"ascii" + b"property float z\nend_header\n1 2 3\n4 5\n6 7 8\n", "3 values"),
        (HEADER % b"ascii" + b"property float z\nend_header\n1 2 3\n4 5 x\n6 7 8\n", "not numeric"),
    ],
)
def test_corrupt_files_raise_naming_the_file(tmp_path, content, match):
    path = _write(tmp_path, content)
    with pytest.raises(ValueError, match=match) as info:
        read_ply(path)
    assert str(path) in str(info.value)


def test_truncated_binary_file_raises(tmp_path, cloud):
    path = tmp_path / "cloud.ply"
    write_ply(path, cloud["points"], intensity=cloud["intensity"])
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"truncated: 257 vertices need 4112 bytes.*found 4107"):
        read_ply(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"points": np.zeros((3, 2))}, ValueError, r"points must have shape \(N, 3\)"),
        ({"points": np.full((1, 3), np.nan)}, ValueError, "must be finite"),
        ({"colors": np.zeros((2, 3))}, TypeError, r"\(colors \* 255\)\.round\(\)"),
        ({"colors": np.full((2, 3), 300)}, ValueError, r"colors must lie in \[0, 255\]"),
        ({"labels": np.zeros(2)}, TypeError, "labels must be an integer array"),
        ({"intensity": np.zeros(3)}, ValueError, r"intensity must have shape \(2,\)"),
    ],
)
def test_write_rejects_bad_arrays(tmp_path, kwargs, error, match):
    arguments = {"points": np.zeros((2, 3)), **kwargs}
    with pytest.raises(error, match=match):
        write_ply(tmp_path / "x.ply", arguments.pop("points"), **arguments)
    assert not (tmp_path / "x.ply").exists()
