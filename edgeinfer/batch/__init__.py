"""Batch runs over real files: ``edgeinfer run``, resumable and fault-isolated, local or on Dask.

```python
from edgeinfer.batch import PointTask, run_batch
from edgeinfer.pointcloud import Segmenter
summary = run_batch(Segmenter("minkunet-scenes"), PointTask(), ["tiles/"], "out/")
print(summary.describe())          # done, skipped, failed, items/s, peak memory per worker
```

The engines' predictors (``pointcloud.Segmenter``, ``video.VideoClassifier``,
``nlp.Embedder``) do the work; a task (``PointTask``, ``VideoTask``, ``TextTask``) says which
files an engine reads, how they split into items and what is written for each;
``run_batch`` runs them with a manifest (resume), ``failures.jsonl`` (fault isolation) and
atomic outputs. ``scheduler="dask"`` or a ``tcp://`` address runs the items on Dask
(``pip install 'edgeinfer[dist]'``). This package sits above the engines, beside the CLI.
"""

from .inputs import InputError, Source, expand_inputs
from .manifest import FAILURES, MANIFEST, SETTINGS, Manifest, atomic_path
from .runner import SCHEDULERS, BatchSummary, ItemResult, process_item, run_batch
from .tasks import ENGINE_TASKS, Item, PointTask, TextTask, VideoTask, read_embeddings

__all__ = [
    "ENGINE_TASKS",
    "FAILURES",
    "MANIFEST",
    "SCHEDULERS",
    "SETTINGS",
    "BatchSummary",
    "InputError",
    "Item",
    "ItemResult",
    "Manifest",
    "PointTask",
    "Source",
    "TextTask",
    "VideoTask",
    "atomic_path",
    "expand_inputs",
    "process_item",
    "read_embeddings",
    "run_batch",
]
