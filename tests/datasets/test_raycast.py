"""Ray casting against analytic answers and against a signed-distance reference."""

import numpy as np
import pytest

from edgeinfer.datasets import (
    Boxes,
    Cylinders,
    Ground,
    SceneLayout,
    SensorConfig,
    Spheres,
    beam_directions,
    build_layout,
    cast_rays,
    scan_layout,
)
from tests.datasets.surfaces import labelled_surface_distance, scene_sdf

ORIGIN = np.zeros(3)


def _box(center, half, yaw=0.0, label=1):
    return Boxes(np.array([center], float), np.array([half], float), np.array([yaw]),
                 np.array([label]), np.array([0.5]))  # fmt: skip


def test_flat_ground_matches_the_closed_form_ranges():
    height, sensor = 1.7, SensorConfig(beams=32, azimuth_step_deg=1.0, range_noise=0.0)
    layout = SceneLayout(ground=Ground(height=-height))
    scan = scan_layout(layout, sensor, np.random.default_rng(0))
    elevation = np.deg2rad(np.linspace(*sensor.fov_deg, sensor.beams))
    expected_range = height / np.sin(-elevation[elevation < 0])
    visible = expected_range[expected_range <= sensor.max_range]
    assert scan.num_points == visible.size * sensor.azimuth_steps
    ranges = np.linalg.norm(scan.points.astype(np.float64), axis=1)
    assert np.allclose(np.sort(ranges), np.sort(np.tile(visible, sensor.azimuth_steps)), atol=1e-4)
    assert np.allclose(scan.points[:, 2], -height, atol=1e-5)
    assert np.all(scan.labels == 0)


def test_sloped_ground_points_satisfy_the_plane_equation():
    ground = Ground(height=-1.7, slope=(0.05, -0.03))
    hits = cast_rays(SceneLayout(ground=ground), ORIGIN, beam_directions(SensorConfig(beams=8)))
    points = hits.distance[hits.hit, None] * beam_directions(SensorConfig(beams=8))[hits.hit]
    assert np.allclose(points[:, 2], ground.z_at(points[:, 0], points[:, 1]), atol=1e-9)


def test_box_face_distance_and_normal():
    hits = cast_rays(SceneLayout(None, boxes=_box((10, 0, 0), (2, 3, 4))), ORIGIN, [[1, 0, 0]])
    assert hits.distance[0] == pytest.approx(8.0)
    assert np.allclose(hits.normal[0], [-1, 0, 0])
    assert hits.labels[0] == 1


def test_rotated_box_is_hit_at_its_corner():
    box = _box((10, 0, 0), (1, 1, 1), yaw=np.pi / 4)
    hits = cast_rays(SceneLayout(None, boxes=box), ORIGIN, [[1, 0, 0], [0, 1, 0]])
    assert hits.distance[0] == pytest.approx(10 - np.sqrt(2))
    assert not hits.hit[1] and hits.labels[1] == -1


def test_cylinder_side_and_top_cap():
    cyl = Cylinders(np.array([[5.0, 0.0]]), np.array([0.5]), np.array([[-2.0, -1.0]]),
                    np.array([4]), np.array([0.7]))  # fmt: skip
    down = [5.1, 0.0, -1.0]  # a point on the top face; the side is above the cap there
    hits = cast_rays(SceneLayout(None, cylinders=cyl), ORIGIN, [[1, 0, -0.3], down])
    side_point = hits.distance[0] * np.array([1, 0, -0.3]) / np.linalg.norm([1, 0, -0.3])
    assert side_point[0] == pytest.approx(4.5) and -2 <= side_point[2] <= -1
    assert np.allclose(hits.normal[0], [-1, 0, 0])
    assert hits.distance[1] == pytest.approx(np.linalg.norm([5.1, 0.0, -1.0]), rel=1e-6)
    assert np.allclose(hits.normal[1], [0, 0, 1])


def test_sphere_distance_and_that_the_nearest_primitive_wins():
    spheres = Spheres(np.array([[10.0, 0, 0], [20.0, 0, 0]]), np.array([2.0, 5.0]),
                      np.array([3, 3]), np.array([0.4, 0.4]))  # fmt: skip
    layout = SceneLayout(Ground(height=-1.7), boxes=_box((30, 0, 0), (1, 1, 1)), spheres=spheres)
    hits = cast_rays(layout, ORIGIN, [[1, 0, 0], [-1, 0, 0]])
    assert hits.distance[0] == pytest.approx(8.0) and hits.labels[0] == 3
    assert np.allclose(hits.normal[0], [-1, 0, 0])
    assert not hits.hit[1]


def test_rays_from_an_offset_origin():
    hits = cast_rays(SceneLayout(Ground(height=0.0)), np.array([3.0, 4.0, 2.0]), [[0, 0, -1]])
    assert hits.distance[0] == pytest.approx(2.0)


def test_hits_agree_with_the_signed_distance_reference():
    layout = build_layout(3)
    rays = beam_directions(SensorConfig(beams=16, azimuth_step_deg=2.0))[::9]  # 320 rays
    hits = cast_rays(layout, ORIGIN, rays)
    points = hits.distance[hits.hit, None] * rays[hits.hit]
    on_surface = labelled_surface_distance(layout, points, hits.labels[hits.hit])
    assert on_surface.max() < 1e-6
    # Nothing lies in front of the hit: samples along each ray up to the hit stay outside.
    fractions = np.linspace(0.0, 1.0, 100)[:, None, None]
    reach = np.where(hits.hit, hits.distance - 1e-4, 90.0)[None, :, None]
    samples = (fractions * reach * rays[None]).reshape(-1, 3)
    assert scene_sdf(layout, samples).min() > -1e-9


@pytest.mark.parametrize(
    ("origin", "directions", "match"),
    [
        (np.zeros(2), [[1, 0, 0]], r"origin of shape \(3,\)"),
        (ORIGIN, [1, 0, 0], r"directions of shape \(R, 3\)"),
        (ORIGIN, [[0, 0, 0]], "non-zero length"),
    ],
)
def test_cast_rays_rejects_bad_rays(origin, directions, match):
    with pytest.raises(ValueError, match=match):
        cast_rays(SceneLayout(Ground(height=-1.0)), origin, directions)


def test_empty_ray_set_gives_empty_hits():
    hits = cast_rays(SceneLayout(Ground(height=-1.0)), ORIGIN, np.zeros((0, 3)))
    assert hits.distance.shape == (0,) and hits.normal.shape == (0, 3)


def test_primitives_validate_their_arrays():
    with pytest.raises(ValueError, match=r"center must have shape \(1, 3\)"):
        Boxes(np.zeros((1, 2)), np.ones((1, 3)), np.zeros(1), np.zeros(1, np.int64), np.ones(1))
    with pytest.raises(TypeError, match="labels must be an int64 array"):
        Spheres(np.zeros((1, 3)), np.ones(1), np.zeros(1), np.ones(1))
    with pytest.raises(ValueError, match="slope"):
        Ground(height=-1.0, slope=(2.0, 0.0))
    with pytest.raises(TypeError, match=r"SceneLayout\.boxes must be a Boxes"):
        SceneLayout(Ground(height=-1.0), boxes="box")
