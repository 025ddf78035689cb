"""What every engine's batch predictor shares: a model loaded once, where it runs, never shipped.

A predictor (``pointcloud.Segmenter``, ``video.VideoClassifier``, ``nlp.Embedder``) is built
from a model *reference* (a name or path that ``load_pretrained`` accepts, plus options) and
loads the model on its first call, in the process that calls it: a Dask worker, a Ray actor or
this process. Pickling keeps only the reference, so shipping one to a worker costs a few hundred
bytes, and each worker loads its own copy once. Calls are serialised by a lock (a worker that
runs several tasks on threads shares one model, whose caches are not thread-safe); ``threads``
sets torch's intra-op thread count for each call and restores the caller's afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Predictor", "check_threads"]


def check_threads(threads: object) -> int | None:
    """``threads`` as given when ``None`` or an int >= 1; else ``ValueError`` naming it."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be None (torch's setting) or an int >= 1; got {threads!r}")
    return threads


class Predictor:
    """Base of the engines' predictors: lazy loading, small pickles, one call at a time.

    Subclasses set ``self._reference`` (what :meth:`_load` needs, plain values) in
    ``__init__`` and implement :meth:`_load` (returning whatever the calls need, typically
    ``(model, info)``) and the calls themselves, which reach the model through :attr:`loaded`
    inside :meth:`_running`.
    """

    engine = ""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self._loaded: Any = None
        self._lock = threading.Lock()

    # -- subclass hooks -------------------------------------------------------------------------

    def _load(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> Mapping[str, Any]:
        """The settings that decide the outputs, plain values (a batch run records them and
        refuses to resume a folder written with other settings). Not ``threads``: results do
        not depend on the thread count."""
        return {"engine": self.engine}

    # -- shared mechanics -----------------------------------------------------------------------

    @property
    def loaded(self) -> Any:
        """What :meth:`_load` returned; loads it on first access (in this process)."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    @property
    def info(self):
        """The model's ``PretrainedInfo`` (loads the model)."""
        return self.loaded[1]

    @contextlib.contextmanager
    def _running(self) -> Iterator[Any]:
        """One call at a time on this predictor, at ``threads`` torch threads."""
        import torch

        with self._lock:
            loaded = self.loaded
            before = torch.get_num_threads()
            if self.threads is not None and self.threads != before:
                torch.set_num_threads(self.threads)
            try:
                with torch.no_grad():
                    yield loaded
            finally:
                if torch.get_num_threads() != before:
                    torch.set_num_threads(before)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaded"] = None  # the worker loads its own copy
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        described = {**self.describe(), "threads": self.threads}
        settings = ", ".join(f"{k}={v!r}" for k, v in described.items() if k != "engine")
        return f"{type(self).__name__}({settings})"
