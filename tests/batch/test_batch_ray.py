"""The predictors in Ray Data's ``map_batches`` on a real local cluster (``ray`` extra; slow:
Ray takes 6-27 s to start). Ray's local mode is gone, so this starts and stops a cluster."""

from __future__ import annotations

import numpy as np
import pytest

from edgeinfer.nlp import Embedder, SpAttenConfig
from edgeinfer.pointcloud import Segmenter
from tests.batch.batch_files import documents

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")  # fmt: skip
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_embedder_in_an_actor_pool_equals_the_local_embedder(local_ray):
    from ray.data import ActorPoolStrategy

    docs = documents(16)
    rows = ray.data.from_items([{"id": f"doc-{i}", "text": d} for i, d in enumerate(docs)])
    out = rows.map_batches(Embedder, fn_constructor_kwargs={"spatten": SpAttenConfig(),
                                                            "threads": 1},
                           batch_size=4, compute=ActorPoolStrategy(size=2),
                           batch_format="numpy").take_all()  # fmt: skip
    order = [int(row["id"].split("-")[1]) for row in out]
    assert sorted(order) == list(range(16))
    expected = Embedder(spatten=SpAttenConfig(), threads=1).embed(docs)
    np.testing.assert_array_equal(np.stack([row["embedding"] for row in out]), expected[order])


def test_segmenter_in_map_batches(local_ray):
    from ray.data import ActorPoolStrategy

    from edgeinfer.datasets import generate_scene

    scans = [generate_scene(seed, beams=8) for seed in range(2)]
    rows = ray.data.from_items([{"name": str(i), "points": s.points, "intensity": s.intensity}
                                for i, s in enumerate(scans)])  # fmt: skip
    out = rows.map_batches(Segmenter, fn_constructor_kwargs={"threads": 1}, batch_size=1,
                           compute=ActorPoolStrategy(size=1),
                           batch_format="numpy").take_all()  # fmt: skip
    segmenter = Segmenter(threads=1)
    for row in out:
        scan = scans[int(row["name"])]
        np.testing.assert_array_equal(row["labels"],
                                      segmenter.segment(scan.points, scan.intensity)[0])
