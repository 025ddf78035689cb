"""The Dask side of ``run_batch``: a LocalCluster or an existing cluster, a bounded window of
items in flight, results handed back to the caller (which alone writes the manifest)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .inputs import InputError
from .runner import ItemResult, process_item
from .tasks import Item

__all__ = ["WORKER_ENVIRON", "dask_client", "local_cluster", "run_on_dask"]

IN_FLIGHT_PER_WORKER = 2
"""Items submitted ahead per worker: enough to keep each busy, few enough to bound memory."""

WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
"""What our LocalCluster's workers start with: Dask's default without its
``MALLOC_TRIM_THRESHOLD_``. Setting that variable switches off glibc's adaptive mmap threshold,
so every large tensor is a fresh mmap with page faults on first touch: a MiniLM chunk ran
1.6x slower per item in a worker than in this process. The predictor sets torch's threads."""


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise InputError("--scheduler dask needs dask.distributed: pip install "
                         "'edgeinfer[dist]'") from exc  # fmt: skip
    return distributed


def _keep(predictor: Any) -> Any:
    """Identity: the predictor as a task result, so each worker keeps one copy (and loads its
    model once), and Dask can rebuild it when the worker holding it dies."""
    return predictor


def local_cluster(workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded worker processes on
    loopback (HTTP on a free port, logs silenced), started with :data:`WORKER_ENVIRON`."""
    import dask

    distributed = _import_distributed()
    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON}):
        return distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0", silence_logs=logging.CRITICAL)


@contextlib.contextmanager
def dask_client(scheduler: str, workers: int | None) -> Iterator[Any]:
    """A ``distributed.Client``: on a new LocalCluster of ``workers`` single-threaded worker
    processes (``scheduler="dask"``, loopback, HTTP on a free port), or on the cluster at the
    address ``scheduler``. Closed (and the LocalCluster stopped) at the end of the block."""
    distributed = _import_distributed()
    from ..bench.profile import available_cores

    for name in ("distributed", "distributed.nanny", "distributed.scheduler",
                 "distributed.worker", "distributed.core"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InputError(f"workers must be an int >= 1; got {workers!r}")
    cluster = None
    try:
        if scheduler == "dask":
            cluster = local_cluster(workers or available_cores())
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(scheduler, timeout=10)
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: "
                                 f"{exc}") from None  # fmt: skip
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def run_on_dask(
    predictor: Any, task: Any, items: Sequence[Item], folder: str, scheduler: str,
    workers: int | None, finish: Callable[[ItemResult], None],
) -> None:
    """Run every item on Dask, calling ``finish`` with each result as it completes."""
    if not items:
        return
    distributed = _import_distributed()
    with dask_client(scheduler, workers) as client:
        count = max(1, len(client.scheduler_info().get("workers", {})))
        shipped = client.submit(_keep, predictor, key=f"edgeinfer-predictor-{uuid.uuid4().hex}")
        pending = iter(items)
        running: dict[str, Item] = {}
        completed = distributed.as_completed()

        def submit_next() -> None:
            item = next(pending, None)
            if item is None:
                return
            future = client.submit(process_item, shipped, task, item, folder, pure=False,
                                   key=f"edgeinfer-item-{uuid.uuid4().hex}")  # fmt: skip
            running[future.key] = item
            completed.add(future)

        for _ in range(count * IN_FLIGHT_PER_WORKER):
            submit_next()
        for future in completed:
            item = running.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # KilledWorker: the item killed every worker it met
                result = ItemResult(item.key, (), 0.0, "", 0.0, (type(exc).__name__, str(exc)))
            finish(result)
            future.release()
            submit_next()
        shipped.release()
