"""Synthetic street scans: determinism, sizes, ranges and geometric truth of the labels."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeinfer.datasets import (
    SCENE_CLASSES,
    LidarScan,
    SensorConfig,
    build_layout,
    generate_scene,
    scan_layout,
)
from tests.datasets.surfaces import labelled_surface_distance

SENSOR_HEIGHT = 1.7


@pytest.fixture(scope="module")
def scene64() -> LidarScan:
    return generate_scene(0)


@pytest.fixture(scope="module")
def scene32() -> LidarScan:
    return generate_scene(0, beams=32)


def test_same_seed_gives_bit_identical_arrays(scene64):
    again = generate_scene(0)
    for name in ("points", "intensity", "labels"):
        assert getattr(again, name).dtype == getattr(scene64, name).dtype
        assert np.array_equal(getattr(again, name), getattr(scene64, name))


def test_different_seeds_give_different_layouts(scene64):
    other = generate_scene(1)
    assert other.num_points != scene64.num_points or not np.array_equal(
        other.points, scene64.points
    )
    assert not np.array_equal(
        np.bincount(other.labels, minlength=6), np.bincount(scene64.labels, minlength=6)
    )


def test_dtypes_and_shapes(scene64):
    n = scene64.num_points
    assert scene64.points.dtype == np.float32 and scene64.points.shape == (n, 3)
    assert scene64.intensity.dtype == np.float32 and scene64.intensity.shape == (n,)
    assert scene64.labels.dtype == np.int64 and scene64.labels.shape == (n,)
    assert scene64.num_classes == len(SCENE_CLASSES) == 6
    assert len(scene64) == n


def test_point_counts_for_64_and_32_beams(scene64, scene32):
    assert 90_000 <= scene64.num_points <= 130_000
    assert 0.4 <= scene32.num_points / scene64.num_points <= 0.6


def test_every_class_is_present_for_the_default_seed(scene64, scene32):
    for scan in (scene64, scene32):
        counts = np.bincount(scan.labels, minlength=len(SCENE_CLASSES))
        assert np.all(counts > 0), dict(zip(SCENE_CLASSES, counts.tolist(), strict=True))


def test_points_lie_within_sensor_range(scene64):
    distance = np.linalg.norm(scene64.points.astype(np.float64), axis=1)
    sensor = SensorConfig()
    assert distance.max() <= sensor.max_range + 1e-4
    assert distance.min() >= sensor.min_range - 1e-4


def test_shorter_max_range_drops_far_returns():
    scan = generate_scene(0, beams=16, max_range=30.0)
    assert np.linalg.norm(scan.points, axis=1).max() <= 30.0 + 1e-4


def test_intensity_lies_in_unit_interval_and_varies(scene64):
    assert scene64.intensity.min() >= 0.0 and scene64.intensity.max() <= 1.0
    assert scene64.intensity.std() > 0.02


def test_ground_points_lie_near_the_ground_plane(scene64):
    ground = build_layout(0, sensor_height=SENSOR_HEIGHT).ground
    points = scene64.points[scene64.labels == SCENE_CLASSES.index("ground")].astype(np.float64)
    height = points[:, 2] - ground.z_at(points[:, 0], points[:, 1])
    assert np.abs(height).max() < 0.15  # range noise is 2 cm (1 sigma)
    assert abs(np.median(points[:, 2]) + SENSOR_HEIGHT) < 1.0


def test_noise_free_points_lie_on_a_surface_of_their_label():
    layout = build_layout(0, sensor_height=SENSOR_HEIGHT)
    sensor = SensorConfig(beams=16, azimuth_step_deg=0.5, range_noise=0.0)
    scan = scan_layout(layout, sensor, np.random.default_rng(0))
    distance = labelled_surface_distance(layout, scan.points, scan.labels)
    assert distance.max() < 1e-3  # float32 rounding at <= 75 m


def test_scan_is_in_the_sensor_frame(scene64):
    below = scene64.points[:, 2] < 0
    assert below.mean() > 0.5  # most returns are ground, 1.7 m below the sensor


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"beams": 0}, ValueError, r"beams must be an int in \[1, 256\]"),
        ({"beams": 2.5}, TypeError, "beams must be an int"),
        ({"azimuth_step_deg": 0.7}, ValueError, "divide 360"),
        ({"fov_deg": (3.0, -25.0)}, ValueError, "lowest <= highest"),
        ({"min_range": 80.0}, ValueError, "min_range < max_range"),
        ({"range_noise": -1.0}, ValueError, "must be >= 0"),
    ],
)
def test_sensor_config_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        SensorConfig(**kwargs)


@pytest.mark.parametrize(
    ("seed", "error", "match"),
    [(-1, ValueError, "non-negative"), ("0", TypeError, "got str"), (True, TypeError, "bool")],
)
def test_generate_scene_rejects_bad_seeds(seed, error, match):
    with pytest.raises(error, match=match):
        generate_scene(seed, beams=8)


def test_lidar_scan_validates_its_arrays():
    points = np.zeros((4, 3), np.float32)
    intensity = np.zeros(4, np.float32)
    labels = np.zeros(4, np.int64)
    with pytest.raises(TypeError, match="points must have dtype float32; got float64"):
        LidarScan(points.astype(np.float64), intensity, labels)
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\); got \(3,\)"):
        LidarScan(points, intensity, labels[:3])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 6\)"):
        LidarScan(points, intensity, labels + 6)
    with pytest.raises(ValueError, match=r"intensity must lie in \[0, 1\]"):
        LidarScan(points, intensity + 2, labels)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        LidarScan(np.zeros((4, 2), np.float32), intensity, labels)
    assert LidarScan(points[:0], intensity[:0], labels[:0]).num_points == 0


def test_import_loads_no_optional_or_heavy_dependency():
    code = (
        "import sys, json, edgeinfer.datasets\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & {"laspy", "lazrs", "torch", "cv2", "scipy"}
