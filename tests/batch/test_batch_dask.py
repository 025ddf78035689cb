"""``run_batch`` on a Dask LocalCluster of 2 worker processes (loopback): the same bytes as the
local run, fault isolation, resume, and a worker killed mid-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeinfer.batch import MANIFEST, PointTask, TextTask, run_batch
from edgeinfer.cli import main
from edgeinfer.nlp import Embedder, SpAttenConfig
from edgeinfer.pointcloud import Segmenter
from tests.batch import batch_files
from tests.batch.faults import KillOnce
from tests.batch.test_batch_run import _outputs

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    from edgeinfer.batch.distributed import local_cluster

    with local_cluster(2) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def scan_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    batch_files.scans(folder, count=4)
    batch_files.las_scan(folder / "tile.laz")
    return folder


def test_dask_writes_the_same_bytes_as_the_local_run(tmp_path, cluster, scan_folder):
    local = run_batch(Segmenter(threads=1), PointTask(), [scan_folder], tmp_path / "local",
                      progress=False)
    on_dask = run_batch(Segmenter(threads=1), PointTask(), [scan_folder], tmp_path / "dask",
                        scheduler=cluster, progress=False)
    assert local.done == on_dask.done == 5
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "local")
    assert len(on_dask.peak_rss_mb) == 2  # both workers took items


def test_dask_text_run_equals_local(tmp_path, cluster):
    docs = batch_files.documents(10)
    files = batch_files.text_files(tmp_path / "in", docs)
    task = TextTask(field="body", id_field="id", chunk=3)
    embedder = Embedder(spatten=SpAttenConfig(), threads=1)
    run_batch(embedder, task, [files["jsonl"]], tmp_path / "local", progress=False)
    summary = run_batch(embedder, task, [files["jsonl"]], tmp_path / "dask",
                        scheduler=cluster, progress=False)
    assert summary.done == 4
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "local")


def test_dask_isolates_a_corrupt_input_and_resumes(tmp_path, cluster, scan_folder):
    inputs = tmp_path / "in"
    for path in sorted(scan_folder.glob("*.bin"))[:2]:
        (inputs / path.name).parent.mkdir(exist_ok=True)
        (inputs / path.name).write_bytes(path.read_bytes())
    batch_files.corrupt(inputs / "broken.laz")
    first = run_batch(Segmenter(threads=1), PointTask(), [inputs], tmp_path / "out",
                      scheduler=cluster, progress=False)
    assert (first.done, first.failed) == (2, 1)
    failure = json.loads((tmp_path / "out" / "failures.jsonl").read_text())
    assert failure["error"] == "ValueError" and "broken.laz" in failure["message"]
    again = run_batch(Segmenter(threads=1), PointTask(), [inputs], tmp_path / "out",
                      scheduler=cluster, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 2, 1)


def test_a_worker_killed_mid_item_is_retried_nothing_lost_or_doubled(tmp_path, cluster,
                                                                    scan_folder):
    marker = tmp_path / "killed"
    task = KillOnce(PointTask(), victim="scan2.bin", marker=marker)
    summary = run_batch(Segmenter(threads=1), task, [scan_folder], tmp_path / "out",
                        scheduler=cluster, progress=False)
    assert marker.exists(), "the victim item must have killed its worker"
    assert (summary.done, summary.failed) == (5, 0)
    keys = [json.loads(line)["key"] for line in (tmp_path / "out" / MANIFEST).read_text()
            .splitlines()]  # fmt: skip
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 5
    local = run_batch(Segmenter(threads=1), PointTask(), [scan_folder], tmp_path / "local",
                      progress=False)
    assert local.done == 5
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "local")
    assert not [p for p in Path(tmp_path / "out").iterdir() if "partial" in p.name]


def test_cli_starts_and_stops_its_own_local_cluster(tmp_path, capsys, scan_folder):
    assert main(["run", "pointcloud", str(scan_folder), "--out", str(tmp_path / "out"),
                 "--scheduler", "dask", "--workers", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "5 items: 5 done" in out and out.count("pid ") == 2
