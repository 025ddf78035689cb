"""Which files a batch run reads, and the output name each one gets.

Inputs are files, folders (searched recursively for the engine's suffixes, hidden files and
folders skipped) and glob patterns (``**`` recurses). Each file gets a *relative name*: its
path below the folder or the glob's fixed prefix it was found under (a file named directly:
its own name), without the suffix. Outputs are written under that name in the output folder,
so a tree of inputs becomes the same tree of outputs (``run_batch`` refuses, before anything
runs, two inputs whose outputs would share a name).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["InputError", "Source", "expand_inputs"]

_MAGIC = frozenset("*?[")


class InputError(ValueError):
    """An input argument that names nothing usable (reported as bad usage)."""


@dataclass(frozen=True)
class Source:
    """One input file: ``path`` (absolute), ``relative`` (its path below its base, POSIX: the
    key a manifest records it under) and ``name`` (``relative`` without the suffix: what its
    outputs are named after), with the file's size and modification time when listed."""

    path: str
    relative: str
    name: str
    size: int
    mtime_ns: int


def _hidden(path: Path, base: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(base).parts)


def _wanted(path: Path, suffixes: Sequence[str]) -> bool:
    return path.is_file() and path.suffix.lower() in suffixes


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _MAGIC & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _found(
    argument: str, suffixes: Sequence[str], skip: Path | None
) -> Iterable[tuple[Path, Path]]:
    """``(file, base)`` pairs named by one argument."""
    path = Path(argument)
    if _MAGIC & set(argument) and not path.exists():
        base = _glob_base(argument)
        matches = sorted(Path(m) for m in glob.glob(argument, recursive=True))
        files = [(m, base) for m in matches if _wanted(m, suffixes) and not _hidden(m, base)]
        if not files:
            raise InputError(f"input {argument!r}: the pattern matches no {'/'.join(suffixes)} "
                             "file")  # fmt: skip
        return files
    if not path.exists():
        raise InputError(f"input {argument!r}: no such file or folder")
    if path.is_dir():
        files = []
        for found in sorted(path.rglob("*")):
            if skip is not None and found.resolve().is_relative_to(skip):
                continue
            if _wanted(found, suffixes) and not _hidden(found, path):
                files.append((found, path))
        if not files:
            raise InputError(f"input folder {argument!r} holds no {'/'.join(suffixes)} file")
        return files
    if path.suffix.lower() not in suffixes:
        raise InputError(f"input {argument!r}: expected a {'/'.join(suffixes)} file; got "
                         f"suffix {path.suffix or '(none)'!r}")  # fmt: skip
    return [(path, path.parent)]


def expand_inputs(
    inputs: Sequence[str | os.PathLike[str]], suffixes: Sequence[str], *,
    out: str | os.PathLike[str] | None = None,
) -> list[Source]:
    """The input files of ``inputs``, in sorted order without repeats.

    ``out`` (the output folder) is never read as input, even inside an input folder.

    Raises:
        InputError: no inputs, or an argument that names no file of these suffixes.
    """
    if not inputs:
        raise InputError("no inputs given: name files, folders or glob patterns")
    suffixes = tuple(s.lower() for s in suffixes)
    skip = None if out is None else Path(out).resolve()
    seen: dict[str, Source] = {}
    for argument in inputs:
        for file, base in _found(os.fspath(argument), suffixes, skip):
            resolved = file.resolve()
            key = str(resolved)
            if key in seen:
                continue
            relative = PurePosixPath(*file.relative_to(base).parts)
            stat = resolved.stat()
            seen[key] = Source(key, relative.as_posix(), relative.with_suffix("").as_posix(),
                               stat.st_size, stat.st_mtime_ns)  # fmt: skip
    return sorted(seen.values(), key=lambda s: s.relative)
