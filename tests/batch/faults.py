"""A task wrapper that kills its worker process on one item, once (importable by Dask workers)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any


class KillOnce:
    """Delegates to ``task``; the first time ``victim`` (an item key) runs, the worker process
    kills itself with SIGKILL (what an out-of-memory kill does), leaving ``marker`` behind."""

    def __init__(self, task: Any, victim: str, marker: Path) -> None:
        self.task, self.victim, self.marker = task, victim, str(marker)
        self.engine, self.suffixes = task.engine, task.suffixes

    def settings(self) -> dict[str, Any]:
        return self.task.settings()

    def items(self, source):
        return self.task.items(source)

    def outputs(self, item) -> list[str]:
        return self.task.outputs(item)

    def process(self, predictor, item, folder):
        if item.key == self.victim and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.task.process(predictor, item, folder)
