"""One small app per engine, run by ``edgeinfer demo <engine>`` (installed as edgeinfer.demos).

Each module ``demos/<engine>.py`` defines ``main(argv) -> int`` and runs on the engine's
built-in or generated sample data; an engine without a module here is "not built yet".
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DemoParser", "DemoUsageError"]


class DemoUsageError(Exception):
    """A demo's bad input: ``edgeinfer demo`` prints it as one line and exits with status 2."""


class DemoParser(argparse.ArgumentParser):
    """The demos' argument parser: usage errors raise :class:`DemoUsageError` (no usage dump),
    and the input and output paths are checked before any long work starts."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise DemoUsageError(f"{self.prog}: {message} (see '{self.prog} --help')")

    def check_input(self, path: Path | None, suffixes: Sequence[str], flag: str = "--input"):
        """Fail now when ``path`` is given but is no readable file with one of ``suffixes``
        (an empty sequence accepts any suffix)."""
        if path is None:
            return
        if not path.is_file():
            self.error(f"{flag}: no file at {str(path)!r}")
        if suffixes and path.suffix.lower() not in suffixes:
            self.error(f"{flag}: {str(path)!r} has suffix {path.suffix!r}; supported: "
                       f"{', '.join(suffixes)}")
        if not os.access(path, os.R_OK):
            self.error(f"{flag}: {str(path)!r} is not readable")

    def prepare_out(self, path: Path, flag: str = "--out") -> None:
        """Create the output folder now (not after minutes of work) and check it is writable."""
        from edgeinfer._paths import folder_problem

        problem = folder_problem(path)
        if problem is not None:
            self.error(f"{flag}: cannot write to the folder {str(path)!r} ({problem})")
