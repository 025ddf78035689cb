"""``run_batch`` and ``edgeinfer run`` locally: outputs against the predictors, fault
isolation, resume, atomic outputs, usage errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeinfer.batch import (
    FAILURES,
    MANIFEST,
    InputError,
    PointTask,
    TextTask,
    VideoTask,
    read_embeddings,
    run_batch,
)
from edgeinfer.cli import main
from edgeinfer.datasets import read_kitti_bin, read_ply, read_video
from edgeinfer.nlp import Embedder
from edgeinfer.pointcloud import Segmenter
from edgeinfer.video import VideoClassifier
from tests.batch import batch_files

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(threads=1)


@pytest.fixture(scope="module")
def embedder():
    return Embedder(threads=1)


def _outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (MANIFEST, FAILURES, "run.json")}


def test_point_outputs_carry_the_predictions(tmp_path, segmenter):
    import laspy

    inputs = tmp_path / "in"
    bins = batch_files.scans(inputs / "kitti", count=2)
    las = batch_files.las_scan(inputs / "tile.laz")
    ply = batch_files.ply_scan(inputs / "cloud.ply")
    summary = run_batch(segmenter, PointTask(), [inputs], tmp_path / "out", progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (4, 0, 0)
    for path in bins:
        data = read_kitti_bin(path)
        table = np.load(tmp_path / "out" / "kitti" / (path.stem + ".npy"))
        labels, scores = segmenter.segment(data["points"], data["intensity"])
        np.testing.assert_array_equal(table["label"], labels)
        np.testing.assert_array_equal(table["score"], scores)
    source, written = laspy.read(las), laspy.read(tmp_path / "out" / "tile.laz")
    labels, scores = segmenter.segment(np.stack([source.x, source.y, source.z], axis=1),
                                       source.intensity / np.float32(65535.0))
    np.testing.assert_array_equal(np.asarray(written.classification), labels)
    np.testing.assert_array_equal(np.asarray(written.score), scores)
    np.testing.assert_array_equal(written.gps_time, source.gps_time)  # other fields kept
    np.testing.assert_array_equal(written.X, source.X)
    cloud, out = read_ply(ply), read_ply(tmp_path / "out" / "cloud.ply")
    labels, scores = segmenter.segment(cloud["points"], cloud["intensity"])
    np.testing.assert_array_equal(out["labels"], labels)
    np.testing.assert_array_equal(out["score"], scores)
    np.testing.assert_array_equal(out["colors"], cloud["colors"])


def test_video_outputs_per_clip_and_per_frame(tmp_path):
    paths = batch_files.videos(tmp_path / "in", count=1)
    clip = VideoClassifier("tsm", threads=1)
    run_batch(clip, VideoTask(annotate=True), paths, tmp_path / "clip", progress=False)
    rows = list(csv.DictReader((tmp_path / "clip" / "clip0.csv").open()))
    expected = clip.classify(read_video(paths[0]))
    assert [(int(r["first_frame"]), int(r["last_frame"]), int(r["class"])) for r in rows] == [
        (e.first, e.last, e.label) for e in expected]
    assert [r["class_name"] for r in rows] == [clip.info.class_names[e.label] for e in expected]
    annotated = read_video(tmp_path / "clip" / "clip0.annotated.mp4")
    assert annotated.shape == read_video(paths[0]).shape
    stream = VideoClassifier("tsm", mode="stream", threads=1)
    run_batch(stream, VideoTask(), paths, tmp_path / "stream", progress=False)
    rows = list(csv.DictReader((tmp_path / "stream" / "clip0.csv").open()))
    expected = stream.classify(read_video(paths[0]))
    assert [int(r["class"]) for r in rows] == [e.label for e in expected]
    assert [float(r["score"]) for r in rows] == pytest.approx([e.score for e in expected],
                                                               rel=1e-8)


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_text_outputs_join_back_in_order(tmp_path, embedder, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    docs = batch_files.documents(12)
    files = batch_files.text_files(tmp_path / "in", docs)
    task = TextTask(field="body", id_field="id", chunk=5, format=fmt)
    summary = run_batch(embedder, task, [files["jsonl"], files["csv"]], tmp_path / "out",
                        progress=False)
    assert (summary.items, summary.done) == (6, 6)  # 12 documents in chunks of 5, two files
    # the dense model's padding changes float sums at ~1e-7 (another batch split than here)
    ids, vectors = read_embeddings(tmp_path / "out", "docs_json")
    assert ids == [f"doc-{i}" for i in range(12)]
    np.testing.assert_allclose(vectors, embedder.embed(docs), atol=1e-6, rtol=0)
    ids, vectors = read_embeddings(tmp_path / "out", "docs_table")
    assert ids == [f"doc-{i}" for i in range(12)]
    csv_texts = [d.replace(". ", ".\n", 1) for d in docs]
    np.testing.assert_allclose(vectors, embedder.embed(csv_texts), atol=1e-6, rtol=0)


def test_text_ids_are_line_numbers_across_blank_lines(tmp_path, embedder):
    docs = batch_files.documents(6)
    files = batch_files.text_files(tmp_path / "in", docs)
    run_batch(embedder, TextTask(chunk=2), [files["txt"]], tmp_path / "out", progress=False)
    ids, vectors = read_embeddings(tmp_path / "out", "docs")
    assert ids == ["1", "2", "3", "5", "6", "7"]  # line 4 is blank
    np.testing.assert_allclose(vectors, embedder.embed(docs), atol=1e-6, rtol=0)


def test_parquet_input(tmp_path, embedder):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    docs = batch_files.documents(7)
    pq.write_table(pa.table({"text": docs, "key": list(range(7))}), tmp_path / "d.parquet",
                   row_group_size=3)
    summary = run_batch(embedder, TextTask(chunk=2, id_field="key"), [tmp_path / "d.parquet"],
                        tmp_path / "out", progress=False)
    assert summary.done == 5  # row groups of 3, 3, 1 in chunks of 2
    ids, vectors = read_embeddings(tmp_path / "out", "d")
    assert ids == [str(i) for i in range(7)]
    np.testing.assert_allclose(vectors, embedder.embed(docs), atol=1e-6, rtol=0)


def test_a_corrupt_file_is_recorded_and_the_run_goes_on(tmp_path, segmenter):
    inputs = tmp_path / "in"
    batch_files.scans(inputs, count=2)
    batch_files.corrupt(inputs / "broken.laz")
    batch_files.corrupt(inputs / "broken.ply")
    (inputs / "short.bin").write_bytes(b"\0" * 10)  # not a whole number of records
    summary = run_batch(segmenter, PointTask(), [inputs], tmp_path / "out", progress=False)
    assert (summary.done, summary.failed) == (2, 3)
    failures = [json.loads(line) for line in (tmp_path / "out" / FAILURES).read_text().splitlines()]
    names = sorted(Path(f["path"]).name for f in failures)
    assert names == ["broken.laz", "broken.ply", "short.bin"]
    assert all(f["error"] == "ValueError" and Path(f["path"]).name in f["message"]
               for f in failures)
    assert sorted(_outputs(tmp_path / "out")) == ["scan0.npy", "scan1.npy"]


def test_a_rerun_skips_done_items_and_redoes_changed_missing_or_failed(tmp_path, segmenter):
    inputs = tmp_path / "in"
    paths = batch_files.scans(inputs, count=3)
    broken = batch_files.corrupt(inputs / "broken.ply")
    out = tmp_path / "out"
    first = run_batch(segmenter, PointTask(), [inputs], out, progress=False)
    assert (first.done, first.failed) == (3, 1)
    before = _outputs(out)
    again = run_batch(segmenter, PointTask(), [inputs], out, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 3, 1)  # the failed one is retried
    (out / "scan1.npy").unlink()
    batch_files.ply_scan(broken)  # the broken file is fixed
    scan = read_kitti_bin(paths[2])
    os.utime(paths[2], ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: redone
    third = run_batch(segmenter, PointTask(), [inputs], out, progress=False)
    assert (third.done, third.skipped, third.failed) == (3, 1, 0)
    after = _outputs(out)
    assert {k: v for k, v in after.items() if k != "broken.ply"} == before
    assert read_ply(out / "broken.ply")["labels"].shape == (len(read_ply(broken)["points"]),)
    assert scan["points"].shape[0] == np.load(out / "scan2.npy").shape[0]
    overwrite = run_batch(segmenter, PointTask(), [inputs], out, overwrite=True,
                          progress=False)
    assert (overwrite.done, overwrite.skipped) == (4, 0)


def test_other_settings_are_refused_without_overwrite(tmp_path, segmenter):
    paths = batch_files.scans(tmp_path / "in", count=1)
    run_batch(segmenter, PointTask(), paths, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=r"other settings .*predictor"):
        run_batch(Segmenter(voxel_size=0.1), PointTask(), paths, tmp_path / "out",
                  progress=False)


def test_partial_files_and_a_cut_manifest_line_are_not_trusted(tmp_path, segmenter):
    paths = batch_files.scans(tmp_path / "in", count=2)
    out = tmp_path / "out"
    run_batch(segmenter, PointTask(), paths, out, progress=False)
    reference = _outputs(out)
    # what kill -9 can leave: a temporary output and a manifest line cut short
    (out / ".scan1.0123456789ab.partial.npy").write_bytes(b"\x93NUMPY junk")
    lines = (out / MANIFEST).read_text().splitlines()
    (out / MANIFEST).write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    (out / "scan1.npy").write_bytes(b"stale")  # its record was cut: it must be redone
    summary = run_batch(segmenter, PointTask(), paths, out, progress=False)
    assert (summary.done, summary.skipped) == (1, 1)
    assert {k: v for k, v in _outputs(out).items() if "partial" not in k} == reference


def test_kill_9_mid_run_then_rerun_equals_a_clean_run(tmp_path):
    docs = batch_files.documents(40)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.txt").write_text("\n".join(docs) + "\n")
    command = [sys.executable, "-m", "edgeinfer.cli", "run", "nlp", str(tmp_path / "in"),
               "--out", str(tmp_path / "out"), "--chunk", "2", "--threads", "1",
               "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "out" / MANIFEST
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(manifest.read_text().splitlines())
    assert 3 <= done_before < 20, "the run must be killed mid-way"
    assert subprocess.run(command, capture_output=True).returncode == 0
    clean = command.copy()
    clean[clean.index(str(tmp_path / "out"))] = str(tmp_path / "clean")
    assert subprocess.run(clean, capture_output=True).returncode == 0
    resumed = {k: v for k, v in _outputs(tmp_path / "out").items() if "partial" not in k}
    assert resumed == _outputs(tmp_path / "clean")
    assert len(resumed) == 40  # 20 chunks, an .npy and an ids file each


def test_outputs_that_would_overwrite_inputs_are_refused(tmp_path, segmenter):
    path = batch_files.las_scan(tmp_path / "tile.las")
    with pytest.raises(InputError, match="would overwrite the input"):
        run_batch(segmenter, PointTask(), [path], tmp_path, progress=False)


def test_inputs_that_name_nothing_or_collide(tmp_path, segmenter):
    with pytest.raises(InputError, match="no such file or folder"):
        run_batch(segmenter, PointTask(), [tmp_path / "missing"], tmp_path / "o")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"expected a \.las/\.laz/\.ply/\.bin file"):
        run_batch(segmenter, PointTask(), [tmp_path / "notes.txt"], tmp_path / "o")
    with pytest.raises(InputError, match="matches no"):
        run_batch(segmenter, PointTask(), [str(tmp_path / "*.laz")], tmp_path / "o")
    batch_files.scans(tmp_path / "a", count=1)
    batch_files.scans(tmp_path / "b", count=1)
    with pytest.raises(InputError, match=r"would both write 'scan0\.npy'"):
        run_batch(segmenter, PointTask(), [tmp_path / "a" / "scan0.bin",
                                           tmp_path / "b" / "scan0.bin"], tmp_path / "o")


def test_inputs_whose_outputs_collide_are_refused(tmp_path):
    videos = batch_files.videos(tmp_path, count=1)
    videos[0].with_suffix(".avi").write_bytes(videos[0].read_bytes())
    with pytest.raises(InputError, match=r"would both write 'clip0\.csv'"):
        run_batch(VideoClassifier(), VideoTask(), [tmp_path], tmp_path / "o", progress=False)


def test_glob_inputs_keep_their_tree(tmp_path, segmenter):
    batch_files.scans(tmp_path / "in" / "day1", count=1)
    batch_files.scans(tmp_path / "in" / "day2", count=1)
    summary = run_batch(segmenter, PointTask(), [str(tmp_path / "in" / "**" / "*.bin")],
                        tmp_path / "out", progress=False)
    assert summary.done == 2
    assert sorted(_outputs(tmp_path / "out")) == ["day1/scan0.npy", "day2/scan0.npy"]


def test_cli_exit_status_and_summary(tmp_path, capsys):
    inputs = tmp_path / "in"
    batch_files.scans(inputs, count=1)
    assert main(["run", "pointcloud", str(inputs), "--out", str(tmp_path / "out"),
                 "--threads", "1", "--no-progress"]) == 0
    assert "1 items: 1 done" in capsys.readouterr().out
    batch_files.corrupt(inputs / "bad.laz")
    assert main(["run", "pointcloud", str(inputs), "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "1 skipped" in captured.out and "bad.laz" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "pointcloud", "{in}", "--out", "{out}", "--spatten", "keep=0.5"],
         "--spatten is for the nlp engine"),
        (["run", "sound", "{in}", "--out", "{out}"], "unknown engine 'sound'"),
        (["run", "nlp", "{in}", "--out", "{out}", "--spatten", "kep=0.5"],
         "unknown setting 'kep'"),
        (["run", "nlp", "{in}", "--out", "{out}", "--spatten", "keep=2"], "token_keep"),
        (["run", "video", "{in}", "--out", "{out}", "--gate", "threshold=1"],
         "--gate needs --mode stream"),
        (["run", "pointcloud", "{in}", "--out", "{out}", "--model", "nope"],
         "cannot load the model"),
        (["run", "pointcloud", "{in}/missing", "--out", "{out}"], "no such file or folder"),
        (["run", "pointcloud", "{in}", "--out", "{in}/scan0.bin/x"], "--out: cannot write"),
        (["run", "pointcloud", "{in}", "--out", "{out}", "--scheduler", "yarn"],
         "scheduler must be one of"),
        (["run", "pointcloud", "{in}", "--out", "{out}", "--workers", "0"],
         "--workers must be >= 1"),
    ],
)
def test_cli_bad_usage_is_one_line_and_status_2(tmp_path, capsys, argv, message):
    batch_files.scans(tmp_path / "in", count=1)
    argv = [a.format(**{"in": tmp_path / "in", "out": tmp_path / "out"}) for a in argv]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_batch_demo_runs_every_engine_and_resumes(tmp_path, capsys):
    from edgeinfer.demos import batch as demo

    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 items: 3 done, 0 skipped (done before), 1 failed" in out  # the damaged scan
    assert "4 items: 0 done, 3 skipped (done before), 1 failed" in out  # the resumed rerun
    assert (tmp_path / "video" / "clip1.csv").is_file()
    ids, vectors = read_embeddings(tmp_path / "nlp", "docs0")
    assert len(ids) == 24 and vectors.shape == (24, 384)


def test_a_text_file_that_cannot_be_split_is_recorded_and_the_run_goes_on(tmp_path, embedder):
    files = batch_files.text_files(tmp_path / "in", batch_files.documents(4))
    (tmp_path / "in" / "broken.csv").write_bytes(b"id,body\n1,caf\xe9\n")  # not UTF-8
    summary = run_batch(embedder, TextTask(field="body", id_field="id"),
                        [files["csv"], tmp_path / "in" / "broken.csv"], tmp_path / "out",
                        progress=False)  # fmt: skip
    assert (summary.items, summary.done, summary.failed) == (2, 1, 1)
    failure = json.loads((tmp_path / "out" / FAILURES).read_text())
    assert failure["error"] == "ValueError" and "line 2 is not UTF-8" in failure["message"]
    assert failure["path"].endswith("broken.csv")
