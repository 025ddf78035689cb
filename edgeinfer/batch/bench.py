"""Benchmark of batch runs: the loop a user would write against ``run_batch``, local and Dask.

Cases (same predictor, same generated files, same process): the baseline is the hand-written
loop (read each file, call the predictor, ``np.save`` the result); the candidate is
``run_batch`` into a fresh folder (inputs listed, manifest, atomic writes, failures file):

- ``<engine>-local``: in this process, at the profile's threads;
- ``<engine>-dask-1`` / ``<engine>-dask-2``: on a Dask LocalCluster of 1 or 2 single-threaded
  worker processes started in the case's setup (its start-up is not timed: ``cluster_start_s``
  in the quality column); each timed run ships the predictor and loads the model on every
  worker once, as a real run does.

Engines: 8 scans (``generate_scene``, 16 beams, shipped MinkUNet), 6 clips of 32 frames at
64x64 (shipped TSM, clip mode), 120 Lee documents in chunks of 20 (MiniLM, ``SpAttenConfig()``).
Quality: ``same`` = 1 when the run's outputs hold exactly the loop's predictions.
A speed-up of 0.9 is 10 % overhead; per item: ``(1/speed-up - 1) * loop time / items``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bench import Benchmark, Case

__all__ = ["BENCHMARKS", "make_cases"]

SCANS, CLIPS, DOCUMENTS, CHUNK = 8, 6, 120, 20


@dataclass
class _State:
    engine: str
    root: Path
    files: list[Path]
    predictor: Any
    task: Any
    scheduler: str = "local"
    extra: dict[str, float] = field(default_factory=dict)


def _files(engine: str, root: Path) -> list[Path]:
    from .samples import write_documents, write_scans, write_videos

    folder = root / "in"
    if engine == "points":
        return write_scans(folder, SCANS)
    if engine == "video":
        return write_videos(folder, CLIPS, clips=4)
    return write_documents(folder, files=3, per_file=DOCUMENTS // 3)  # 2 chunks per file


def _setup(engine: str, workers: int) -> _State:
    from .tasks import PointTask, TextTask, VideoTask

    root = Path(tempfile.mkdtemp(prefix=f"edgeinfer-bench-batch-{engine}-"))
    threads = 1 if workers else None
    if engine == "points":
        from ..pointcloud import Segmenter

        predictor, task = Segmenter(threads=threads), PointTask()
    elif engine == "video":
        from ..video import VideoClassifier

        predictor, task = VideoClassifier(threads=threads), VideoTask()
    else:
        from ..nlp import Embedder, SpAttenConfig

        predictor, task = Embedder(spatten=SpAttenConfig(), threads=threads), TextTask(
            chunk=CHUNK)
    state = _State(engine, root, _files(engine, root), predictor, task)
    predictor.loaded  # noqa: B018 - the loop's model is loaded before timing, as a run's is
    weakref.finalize(state, shutil.rmtree, root, True)
    if workers:
        from .distributed import local_cluster

        start = time.perf_counter()
        cluster = local_cluster(workers)
        state.extra["cluster_start_s"] = round(time.perf_counter() - start, 2)
        state.scheduler = cluster.scheduler_address
        weakref.finalize(state, cluster.close)
    return state


def _loop(state: _State) -> dict[str, np.ndarray]:
    """What a user writes: read, predict, save, one file after another."""
    from ..datasets import iter_video_frames, read_kitti_bin

    out = state.root / f"loop-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    results = {}
    for path in state.files:
        if state.engine == "points":
            data = read_kitti_bin(path)
            labels, scores = state.predictor.segment(data["points"], data["intensity"])
            np.save(out / f"{path.stem}.npy", np.stack([labels, scores.view(np.int32)]))
            results[path.stem] = labels
        elif state.engine == "video":
            rows = state.predictor.classify(iter_video_frames(path))
            labels = np.array([row.label for row in rows])
            np.save(out / f"{path.stem}.npy", labels)
            results[path.stem] = labels
        else:
            texts = [line for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip()]  # fmt: skip
            for part in range(0, len(texts), CHUNK):
                vectors = state.predictor.embed(texts[part: part + CHUNK])
                np.save(out / f"{path.stem}.{part // CHUNK:05d}.npy", vectors)
                results[f"{path.stem}.{part // CHUNK:05d}"] = vectors
    shutil.rmtree(out)
    return results


def _run(state: _State) -> dict[str, np.ndarray]:
    import csv

    from .runner import run_batch

    out = state.root / f"run-{uuid.uuid4().hex[:8]}"
    summary = run_batch(state.predictor, state.task, [state.root / "in"], out,
                        scheduler=state.scheduler, progress=False)  # fmt: skip
    if summary.failed:
        raise RuntimeError(f"batch benchmark: {summary.failures[0]}")
    results = {}
    for path in state.files:
        if state.engine == "points":
            results[path.stem] = np.load(out / f"{path.stem}.npy")["label"]
        elif state.engine == "video":
            with open(out / f"{path.stem}.csv", newline="") as handle:
                results[path.stem] = np.array([int(row["class"]) for row in
                                               csv.DictReader(handle)])  # fmt: skip
        else:
            for chunk in sorted(out.glob(f"{path.stem}.*.npy")):
                results[chunk.stem] = np.load(chunk)
                json.loads(chunk.with_name(chunk.stem + ".ids.json").read_text())
    shutil.rmtree(out)
    return results


def _quality(loop: dict, run: dict, state: _State) -> dict[str, float]:
    same = loop.keys() == run.keys() and all(np.array_equal(loop[k], run[k]) for k in loop)
    return {"same": float(same), "items": float(len(loop)), **state.extra}


def make_cases() -> list[Case]:
    cases = []
    for engine in ("points", "video", "text"):
        for workers in (0, 1, 2):
            name = f"{engine}-local" if workers == 0 else f"{engine}-dask-{workers}"
            cases.append(Case(
                name, lambda e=engine, w=workers: _setup(e, w), _loop, _run, _quality,
                params={"workers": float(workers)}, count_macs=False,
                requires=("distributed",) if workers else ()))  # fmt: skip
    return cases


BENCHMARKS = (
    Benchmark(
        name="batch",
        title="Batch runs: run_batch (local, Dask 1 and 2 workers) vs the loop a user writes",
        baseline="hand-written loop",
        cases=make_cases,
        description=(
            f"Generated files: {SCANS} scans (16 beams, MinkUNet), {CLIPS} clips of 32 frames "
            f"(64x64, TSM, clip mode), {DOCUMENTS} documents in chunks of {CHUNK} (MiniLM, "
            "SpAttenConfig()). Baseline: read, predict, np.save per file, model loaded in "
            "setup. edgeinfer: run_batch into a fresh folder (listing, manifest, atomic "
            "writes); Dask cases on a LocalCluster started in setup (cluster_start_s), each "
            "run shipping the predictor and loading the model once per worker. Dask workers "
            "run 1 thread each; the loop and the local runner run at the profile's threads."
        ),
    ),
)
