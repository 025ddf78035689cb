"""Point-cloud files: KITTI velodyne ``.bin``, PLY, and LAS/LAZ (through optional laspy).

Every reader returns a dict of arrays with at least ``"points"`` float32 ``(N, 3)``;
``read_points`` picks the reader from the file suffix.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np

from ._arrays import as_path, check_points, check_values
from .las_header import check_las_header
from .ply import read_ply, write_ply

__all__ = [
    "POINT_SUFFIXES",
    "read_kitti_bin",
    "read_las",
    "read_las_data",
    "read_ply",
    "read_points",
    "write_kitti_bin",
    "write_ply",
]

POINT_SUFFIXES = (".bin", ".ply", ".las", ".laz")
"""File suffixes ``read_points`` understands (case-insensitive)."""

_KITTI_RECORD = np.dtype("<f4")  # x, y, z, intensity as little-endian float32
_KITTI_BYTES = 4 * _KITTI_RECORD.itemsize
KITTI_MAX_RANGE = 1.0e5
"""Largest coordinate magnitude (metres) ``read_kitti_bin`` accepts: a vehicle LiDAR sees a
few hundred metres, so larger values mean the file is not a scan (random bytes read as
float32 are mostly astronomically large)."""


def read_kitti_bin(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a KITTI velodyne scan: consecutive float32 ``x, y, z, intensity`` records.

    The format has no header, so a file cut at a record boundary cannot be told from a
    shorter scan. What can be detected is refused: an empty file, a size that is not a whole
    number of records, NaN/inf values, and coordinates beyond ``KITTI_MAX_RANGE`` metres.

    Returns:
        ``{"points": float32 (N, 3), "intensity": float32 (N,)}``.

    Raises:
        ValueError: an empty file, a size not a multiple of 16 bytes (truncated or not a
            scan), non-finite values or absurd coordinates (with the first offending record).
    """
    source = as_path(path)
    size = source.stat().st_size
    if size == 0:
        raise ValueError(f"{source}: the file is empty; a KITTI .bin scan holds 16-byte "
                         "x, y, z, intensity records")
    if size % _KITTI_BYTES:
        raise ValueError(
            f"{source}: size {size} bytes is not a multiple of {_KITTI_BYTES} "
            "(one point = 4 float32 x, y, z, intensity); the file is truncated or not a "
            "KITTI velodyne .bin scan"
        )
    records = np.fromfile(source, dtype=_KITTI_RECORD).reshape(-1, 4)
    bad = ~np.isfinite(records).all(axis=1) | (np.abs(records[:, :3]) > KITTI_MAX_RANGE).any(1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{source}: {int(bad.sum())} of {len(records)} records are NaN/inf or beyond "
            f"{KITTI_MAX_RANGE:g} m, the first is record {row}: {records[row].tolist()}; the "
            "file is corrupt or not a KITTI velodyne .bin scan"
        )
    return {
        "points": records[:, :3].astype(np.float32),
        "intensity": records[:, 3].astype(np.float32),
    }


def write_kitti_bin(
    path: str | os.PathLike[str], points: np.ndarray, intensity: np.ndarray | None = None
) -> None:
    """Write points ``(N, 3)`` and intensity ``(N,)`` (zeros if omitted) as a KITTI ``.bin``.

    Raises:
        TypeError / ValueError: points not a finite ``(N, 3)`` array or intensity not ``(N,)``.
    """
    target = as_path(path)
    xyz = check_points(points)
    records = np.zeros((xyz.shape[0], 4), dtype=_KITTI_RECORD)
    records[:, :3] = xyz
    if intensity is not None:
        records[:, 3] = check_values("intensity", intensity, xyz.shape[0])
    records.tofile(target)


def read_las_data(path: str | os.PathLike[str]) -> Any:
    """The whole ``laspy.LasData`` of a LAS/LAZ file (every field, VLR and extra dimension),
    read with the checks of :func:`read_las` (header against file size first, point count
    after): what a writer that keeps the input's fields starts from.

    Raises:
        ImportError / ValueError: as :func:`read_las`.
    """
    source = as_path(path)
    laspy = _import_laspy()
    header = check_las_header(source)
    try:
        las = laspy.read(source)
    except Exception as exc:  # laspy, lazrs (LazrsError) and numpy raise their own classes
        raise ValueError(
            f"{source}: not a readable LAS/LAZ file ({type(exc).__name__}: {exc}); LAZ needs "
            "lazrs: pip install edgeinfer[data]"
        ) from exc
    if len(las.points) != header.point_count:
        raise ValueError(
            f"{source}: the header promises {header.point_count} points, the file yields "
            f"{len(las.points)}: it is truncated or corrupt"
        )
    return las


def read_las(path: str | os.PathLike[str], *, dtype: type = np.float32) -> dict[str, np.ndarray]:
    """Read a LAS or LAZ file with laspy (LAZ also needs lazrs): ``pip install edgeinfer[data]``.

    Coordinates are the file's scaled real-world values (``scale * raw + offset``) with
    nothing subtracted. In float32 (the default) a georeferenced coordinate around 500 km keeps
    about 3 cm precision; pass ``dtype=np.float64`` to keep every digit.

    Returns:
        ``{"points": (N, 3) of dtype, "intensity": float32 (N,)}``, intensity being the 16-bit
        LAS value divided by 65535 (so in [0, 1]).

    Raises:
        ImportError: laspy is not installed.
        ValueError: the file is not a readable LAS/LAZ file (its header is checked against
            the file first: a header promising more than the file holds is refused before
            laspy reads it), it holds fewer or more points than its header promises, or
            ``dtype`` is not a float type.
    """
    source = as_path(path)
    try:
        valid_dtype = np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64))
    except TypeError:
        valid_dtype = False
    if not valid_dtype:
        raise ValueError(f"read_las dtype must be np.float32 or np.float64; got {dtype!r}")
    las = read_las_data(source)
    points = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    intensity = np.asarray(las.intensity, dtype=np.float32) / np.float32(65535.0)
    return {"points": points.astype(dtype), "intensity": intensity}


def read_points(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a point-cloud file by suffix: ``.bin`` (KITTI), ``.ply``, ``.las`` / ``.laz``.

    Returns:
        the chosen reader's dict; ``"points"`` float32 ``(N, 3)`` is always present.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, an unknown suffix (the message lists the supported ones), or
            the reader's own errors.
    """
    source = as_path(path)
    suffix = source.suffix.lower()
    if suffix in POINT_SUFFIXES and not source.exists():
        raise FileNotFoundError(f"point-cloud file not found: {source}")
    if suffix in POINT_SUFFIXES and not source.is_file():
        raise ValueError(f"{source}: not a regular file; pass the path of a point-cloud file")
    if suffix == ".bin":
        return read_kitti_bin(source)
    if suffix == ".ply":
        return read_ply(source)
    if suffix in (".las", ".laz"):
        return read_las(source)
    raise ValueError(
        f"{source}: unknown point-cloud suffix {source.suffix!r}; "
        f"supported: {', '.join(POINT_SUFFIXES)}"
    )


def _import_laspy() -> ModuleType:
    try:
        return importlib.import_module("laspy")
    except ImportError as exc:
        raise ImportError(
            "reading LAS/LAZ files needs the optional package laspy (and lazrs for LAZ); "
            "install them with: pip install edgeinfer[data]"
        ) from exc
