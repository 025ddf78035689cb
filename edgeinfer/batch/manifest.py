"""The output folder's record of a run: what is done, with which settings, what failed.

- ``run.json``: the settings that decide the outputs (engine, model, options). A folder written
  with other settings is refused unless the run overwrites it.
- ``manifest.jsonl``: one line per finished item (key, input size and time, outputs, seconds),
  appended and flushed as each finishes. An item counts as done when its line is there, its
  input is unchanged and every output it lists exists; anything else is redone. A line cut by
  a kill is ignored (that item is redone).
- ``failures.jsonl``: this run's failed items (path, error type, message), rewritten by
  each run.

Every output is first written under a temporary name beside its final one and renamed when
complete (:func:`atomic_path`), and the manifest line is written after the rename: an
interrupted run leaves no partial output that a rerun would trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FAILURES", "MANIFEST", "SETTINGS", "Manifest", "atomic_path"]

MANIFEST, SETTINGS, FAILURES = "manifest.jsonl", "run.json", "failures.jsonl"


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final`` (hidden, same suffix) to write to; renamed to
    ``final`` when the block ends without error, removed otherwise."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:12]}.partial{final.suffix}")
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class Manifest:
    """The run records of ``folder`` for ``settings`` (plain values).

    Raises:
        ValueError: ``folder`` holds a run with other settings and ``overwrite`` is false
            (the message names the settings that differ).
    """

    def __init__(self, folder: Path, settings: Mapping[str, Any], *, overwrite: bool) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.settings = _plain(dict(settings))
        settings_file = self.folder / SETTINGS
        self.done: dict[str, dict[str, Any]] = {}
        if settings_file.exists() and not overwrite:
            try:
                before = json.loads(settings_file.read_text())
            except (OSError, ValueError):
                before = None
            if before != self.settings:
                changed = sorted(k for k in set(self.settings) | set(before or {})
                                 if (before or {}).get(k) != self.settings.get(k))  # fmt: skip
                raise ValueError(
                    f"{self.folder} holds a run with other settings ({', '.join(changed)} "
                    "differ); pass --overwrite to redo it, or choose another --out")
            self.done = self._read()
        if overwrite:
            with contextlib.suppress(FileNotFoundError):
                (self.folder / MANIFEST).unlink()
        with atomic_path(settings_file) as temporary:
            temporary.write_text(json.dumps(self.settings, indent=1, sort_keys=True) + "\n")
        self._log = open(self.folder / MANIFEST, "a", encoding="utf-8")  # noqa: SIM115
        self._failures = open(self.folder / FAILURES, "w", encoding="utf-8")  # noqa: SIM115

    def _read(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        path = self.folder / MANIFEST
        if not path.exists():
            return records
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    records[str(record["key"])] = record
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill: that item is redone
        return records

    def is_done(self, key: str, size: int, mtime_ns: int) -> bool:
        """Whether ``key`` finished with this input (size and time) and its outputs exist."""
        record = self.done.get(key)
        return (record is not None and record.get("size") == size
                and record.get("mtime_ns") == mtime_ns
                and all((self.folder / name).is_file() for name in record.get("outputs", ())))

    def record(self, key: str, size: int, mtime_ns: int, outputs: Sequence[str],
               **extra: Any) -> None:
        """Append ``key`` as done (after its outputs were renamed into place)."""
        record = {"key": key, "size": size, "mtime_ns": mtime_ns, "outputs": list(outputs),
                  **extra}  # fmt: skip
        self.done[key] = record
        self._log.write(json.dumps(record, sort_keys=True) + "\n")
        self._log.flush()

    def fail(self, key: str, path: str, error_type: str, message: str) -> None:
        """Append a failed item to ``failures.jsonl``."""
        self.done.pop(key, None)
        line = {"key": key, "path": path, "error": error_type, "message": message}
        self._failures.write(json.dumps(line, sort_keys=True) + "\n")
        self._failures.flush()

    def close(self) -> None:
        self._log.close()
        self._failures.close()
