"""Run a predictor over every item of a set of input files: locally or on a Dask cluster.

``run_batch(predictor, task, inputs, out)`` lists the input files, splits them into items,
skips the items the output folder's manifest records as done, and runs the rest:

- ``scheduler="local"``: one after another in this process;
- ``scheduler="dask"``: on a ``dask.distributed`` LocalCluster of ``workers`` single-threaded
  worker processes (loopback only, HTTP on a free port), started and stopped by the run;
- ``scheduler="tcp://host:port"``: on an existing Dask cluster (its workers must see the input
  and output paths).

On Dask the predictor is shipped once as a task result (a few hundred bytes: it loads its model
on each worker, once), at most two items per worker are in flight (memory stays bounded however
many inputs there are), and only this process writes the manifest. An item's outputs depend on
that item alone, so they are the same bytes whatever the worker count and completion order
(at the same ``threads``). A failing item is recorded in ``failures.jsonl`` and the run goes
on; a worker that dies mid-item is replaced and the item retried on another (Dask's
``allowed-failures``), or recorded as failed when it kills every worker it meets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inputs import InputError, Source, expand_inputs
from .manifest import Manifest
from .tasks import Item

__all__ = ["SCHEDULERS", "BatchSummary", "ItemResult", "plan_items", "process_item", "run_batch"]

SCHEDULERS = ("local", "dask")
"""Scheduler names; a ``tcp://`` (or ``tls://``) address also works (an existing cluster)."""


@dataclass(frozen=True)
class ItemResult:
    """What one item's run reports back: ``error`` is ``None`` or ``(type name, message)``."""

    key: str
    outputs: tuple[str, ...]
    seconds: float
    worker: str
    peak_rss_mb: float
    error: tuple[str, str] | None = None
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchSummary:
    """The totals of a run (``done`` this run, ``skipped`` done before, ``failed``)."""

    items: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        """Items run this run per second of wall time (0 when none ran)."""
        ran = self.done + self.failed
        return ran / self.seconds if self.seconds > 0 and ran else 0.0

    def describe(self) -> str:
        memory = ", ".join(f"{w} {mb:.0f} MB" for w, mb in sorted(self.peak_rss_mb.items()))
        return (f"{self.items} items: {self.done} done, {self.skipped} skipped (done before), "
                f"{self.failed} failed; {self.seconds:.1f} s, {self.items_per_second:.2f} "
                f"items/s; peak memory per worker: {memory or '-'}")  # fmt: skip


def _peak_rss_mb() -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def process_item(predictor: Any, task: Any, item: Item, folder: str) -> ItemResult:
    """Run one item and report (never raises for a bad input: the error is in the result;
    an interrupt or a dying process still ends the call)."""
    start = time.perf_counter()
    worker = f"pid {os.getpid()}"
    try:
        counts = task.process(predictor, item, Path(folder))
        error = None
    except Exception as exc:  # a bad file may raise anything: record it, go on
        counts, error = {}, (type(exc).__name__, _message(exc))
    return ItemResult(item.key, tuple(task.outputs(item)), time.perf_counter() - start, worker,
                      _peak_rss_mb(), error, counts or {})  # fmt: skip


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else repr(exc)


def plan_items(task: Any, sources: Iterable[Source]) -> tuple[list[Item], list[ItemResult]]:
    """Every item of ``sources``, and a failed result for each file that cannot even be split
    into items (a text file that does not decode, say): recorded like any failed item."""
    items, unreadable = [], []
    for source in sources:
        try:
            items.extend(task.items(source))
        except Exception as exc:  # a bad file may raise anything: record it, go on
            unreadable.append(ItemResult(Item(source).key, (), 0.0, "", 0.0,
                                         (type(exc).__name__, _message(exc))))  # fmt: skip
    return items, unreadable


def _check_outputs(task: Any, items: Sequence[Item], folder: Path) -> None:
    inputs = {item.source.path for item in items}
    writers: dict[str, str] = {}
    for item in items:
        for name in task.outputs(item):
            if str((folder / name).resolve()) in inputs:
                raise InputError(f"output {folder / name} would overwrite the input "
                                 f"{item.source.path}; choose another --out")  # fmt: skip
            other = writers.setdefault(name, item.source.path)
            if other != item.source.path:
                raise InputError(f"inputs {other!r} and {item.source.path!r} would both write "
                                 f"{name!r}; run them into separate --out folders")


def run_batch(
    predictor: Any, task: Any, inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str], *, scheduler: str = "local", workers: int | None = None,
    overwrite: bool = False, progress: bool = True,
    on_result: Callable[[ItemResult], None] | None = None,
) -> BatchSummary:
    """Run ``predictor`` over every item of ``inputs`` into ``out`` (see the module docstring).

    Args:
        predictor: an engine predictor (``Segmenter``, ``VideoClassifier``, ``Embedder``).
        task: the engine's task (``PointTask``, ``VideoTask``, ``TextTask``).
        inputs: files, folders, glob patterns.
        out: the output folder (created).
        scheduler: ``"local"``, ``"dask"`` or a Dask scheduler address.
        workers: Dask LocalCluster worker processes (default: the cores available).
        overwrite: redo every item, whatever the manifest says.
        progress: a tqdm bar over items (items/s).
        on_result: called with each finished item's :class:`ItemResult` (in completion order).

    Raises:
        InputError: inputs naming nothing, outputs that would overwrite inputs, or a bad
            scheduler.
        ValueError: ``out`` holds a run with other settings (without ``overwrite``).
    """
    folder = Path(out)
    if scheduler not in SCHEDULERS and "://" not in scheduler:
        raise InputError(f"scheduler must be one of {list(SCHEDULERS)} or a Dask address "
                         f"(tcp://host:port); got {scheduler!r}")  # fmt: skip
    sources = expand_inputs(inputs, task.suffixes, out=folder)
    sources_by_key = {Item(source).key: source for source in sources}
    items, unreadable = plan_items(task, sources)
    _check_outputs(task, items, folder)
    settings = {"engine": task.engine, "predictor": dict(predictor.describe()),
                "task": task.settings()}  # fmt: skip
    manifest = Manifest(folder, settings, overwrite=overwrite)
    summary = BatchSummary(items=len(items) + len(unreadable))
    todo = []
    for item in items:
        if not overwrite and manifest.is_done(item.key, item.source.size, item.source.mtime_ns):
            summary.skipped += 1
        else:
            todo.append(item)
    bar = _bar(len(items), summary.skipped, progress)
    start = time.perf_counter()
    by_key = {item.key: item for item in todo}
    by_key.update((result.key, Item(sources_by_key[result.key])) for result in unreadable)

    def finish(result: ItemResult) -> None:
        item = by_key[result.key]
        if result.worker:  # "" when no worker ran it
            summary.peak_rss_mb[result.worker] = max(
                summary.peak_rss_mb.get(result.worker, 0.0), result.peak_rss_mb)
        if result.error is None:
            manifest.record(item.key, item.source.size, item.source.mtime_ns, result.outputs,
                            seconds=round(result.seconds, 4), **result.counts)  # fmt: skip
            summary.done += 1
        else:
            kind, message = result.error
            manifest.fail(item.key, item.source.path, kind, message)
            summary.failed += 1
            summary.failures.append({"key": item.key, "path": item.source.path, "error": kind,
                                     "message": message})  # fmt: skip
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=summary.failed, refresh=False)
        if on_result is not None:
            on_result(result)

    try:
        for result in unreadable:
            finish(result)
        if scheduler == "local":
            for item in todo:
                finish(process_item(predictor, task, item, str(folder)))
        else:
            from .distributed import run_on_dask

            run_on_dask(predictor, task, todo, str(folder), scheduler, workers, finish)
    finally:
        summary.seconds = time.perf_counter() - start
        manifest.close()
        if bar is not None:
            bar.close()
    return summary


def _bar(total: int, skipped: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=skipped, unit="item", dynamic_ncols=True)
