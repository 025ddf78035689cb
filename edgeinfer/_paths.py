"""Output folders checked before long work (the CLI's and the demos' shared check)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["folder_problem"]


def folder_problem(folder: Path) -> str | None:
    """Create ``folder`` (and its parents) if missing; ``None`` when it is a writable folder,
    else a short reason ("a file is in the way", "not writable", the OS error)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "a file is in the way"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not os.access(folder, os.W_OK):
        return "not writable"
    return None
