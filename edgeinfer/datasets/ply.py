"""PLY point clouds: ASCII and binary little-endian, vertex element with scalar properties.

Written files hold ``x, y, z`` (float) and, when given, ``intensity`` (float), ``label`` (int)
and ``red, green, blue`` (uchar). ``read_ply`` reads any PLY whose first element is ``vertex``
with scalar properties; elements after it (faces, say) are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ._arrays import as_path, check_colors, check_labels, check_points, check_values

__all__ = ["PLY_FORMATS", "read_ply", "write_ply"]

PLY_FORMATS = ("ascii", "binary_little_endian")
"""PLY encodings ``read_ply`` and ``write_ply`` support."""

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_COLORS = ("red", "green", "blue")


@dataclass(frozen=True)
class _Header:
    """What the header says about the vertex element and where its data starts."""

    encoding: str
    count: int
    properties: tuple[tuple[str, str], ...]  # (name, numpy type code such as "f4")
    body_offset: int


def write_ply(
    path: str | os.PathLike[str],
    points: np.ndarray,
    *,
    colors: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    intensity: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    binary: bool = True,
) -> None:
    """Write points ``(N, 3)`` and optional per-point intensity ``(N,)``, labels ``(N,)``,
    scores ``(N,)`` (a float ``score`` property: a prediction's confidence, NaN allowed) and
    uint8 colours ``(N, 3)`` as a PLY file (binary little-endian, or ASCII if ``binary=False``).

    Floats are stored as float32 and labels as int32; ASCII writes floats with 9 significant
    digits so they read back bit for bit.

    Raises:
        TypeError: an array of the wrong kind (e.g. float colours).
        ValueError: an array of the wrong shape or out of range.
    """
    target = as_path(path)
    columns = _vertex_columns(points, colors, labels, intensity, scores)
    count = columns["x"].shape[0]
    kinds = {"f4": "float", "i4": "int", "u1": "uchar"}
    lines = ["ply", f"format {PLY_FORMATS[1] if binary else PLY_FORMATS[0]} 1.0"]
    lines += ["comment written by edgeinfer", f"element vertex {count}"]
    lines += [f"property {kinds[col.dtype.str[1:]]} {name}" for name, col in columns.items()]
    header = ("\n".join([*lines, "end_header"]) + "\n").encode("ascii")
    with open(target, "wb") as handle:
        handle.write(header)
        if binary:
            record = np.dtype([(name, "<" + col.dtype.str[1:]) for name, col in columns.items()])
            table = np.empty(count, dtype=record)
            for name, col in columns.items():
                table[name] = col
            handle.write(table.tobytes())
        else:
            formats = ["%.9g" if col.dtype.kind == "f" else "%d" for col in columns.values()]
            table = np.column_stack(list(columns.values())).astype(np.float64)  # exact for both
            np.savetxt(handle, table, fmt=formats, delimiter=" ")


def _vertex_columns(
    points: np.ndarray,
    colors: np.ndarray | None,
    labels: np.ndarray | None,
    intensity: np.ndarray | None,
    scores: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Checked per-vertex columns in file order: float32 x, y, z, intensity; int32 label;
    float32 score; uint8 red, green, blue."""
    xyz = check_points(points)
    count = xyz.shape[0]
    columns = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    if intensity is not None:
        columns["intensity"] = check_values("intensity", intensity, count)
    if labels is not None:
        columns["label"] = check_labels(labels, count)
    if scores is not None:
        values = np.asarray(scores)
        if values.shape != (count,) or values.dtype.kind != "f":
            raise ValueError(f"scores must be a float ({count},) array (one per point); got "
                             f"{values.dtype} of shape {values.shape}")  # fmt: skip
        columns["score"] = values.astype(np.float32)
    if colors is not None:
        rgb = check_colors(colors, count)
        columns.update({name: rgb[:, k] for k, name in enumerate(_COLORS)})
    return columns


def read_ply(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read the vertex element of a PLY file.

    Returns:
        ``{"points": float32 (N, 3)}`` plus, when the file has them, ``"intensity"`` float32
        ``(N,)``, ``"labels"`` int64 ``(N,)`` (from ``label``) and ``"colors"`` uint8 ``(N, 3)``
        (from uchar ``red, green, blue``); any other vertex property under its own name.

    Raises:
        ValueError: not a PLY file, a corrupt or truncated header or body, an unsupported
            encoding (big-endian) or layout (list properties, vertex not the first element),
            or no ``x, y, z`` properties, NaN/inf coordinates, or an ASCII value that does
            not fit its declared integer type. The message names the file.
    """
    source = as_path(path)
    data = source.read_bytes()
    header = _parse_header(data, source)
    if header.encoding == "ascii":
        columns = _read_ascii(data[header.body_offset :], header, source)
    else:
        columns = _read_binary(data[header.body_offset :], header, source)
    return _standard_fields(columns, source)


def _parse_header(data: bytes, source: os.PathLike[str]) -> _Header:
    if not data.startswith(b"ply"):
        raise ValueError(f"{source}: not a PLY file (it must start with the line 'ply')")
    end = data.find(b"end_header")
    if end < 0:
        raise ValueError(f"{source}: PLY header has no 'end_header' line; the file is truncated")
    newline = data.find(b"\n", end)
    body_offset = len(data) if newline < 0 else newline + 1
    try:
        lines = data[:end].decode("ascii").splitlines()[1:]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: PLY header is not ASCII text; the file is corrupt") from exc
    encoding, elements = None, []
    for number, raw in enumerate(lines, start=2):
        words = raw.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3:
            encoding = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) >= 3:
            elements[-1][2].append(tuple(words[1:]))
        else:
            raise ValueError(f"{source}: bad PLY header line {number}: {raw.strip()!r}")
    if encoding not in PLY_FORMATS:
        raise ValueError(
            f"{source}: unsupported PLY format {encoding!r}; supported: {', '.join(PLY_FORMATS)}"
        )
    return _Header(encoding, *_vertex_properties(elements, source), body_offset)


def _vertex_properties(
    elements: list[tuple[str, int, list[tuple[str, ...]]]], source: os.PathLike[str]
) -> tuple[int, tuple[tuple[str, str], ...]]:
    if not elements or elements[0][0] != "vertex":
        raise ValueError(f"{source}: PLY file must start with a 'vertex' element; got "
                         f"{[name for name, _, _ in elements]}")  # fmt: skip
    _, count, raw_properties = elements[0]
    properties = []
    for words in raw_properties:
        if len(words) != 2 or words[0] not in _TYPES:
            raise ValueError(
                f"{source}: unsupported vertex property {' '.join(words)!r}; only scalar "
                f"properties of types {', '.join(sorted(_TYPES))} are supported"
            )
        properties.append((words[1], _TYPES[words[0]]))
    names = [name for name, _ in properties]
    if len(set(names)) != len(names) or not {"x", "y", "z"} <= set(names):
        raise ValueError(f"{source}: PLY vertex properties must be distinct and include x, y, z; "
                         f"got {names}")  # fmt: skip
    return count, tuple(properties)


def _read_binary(body: bytes, header: _Header, source: os.PathLike[str]) -> dict[str, np.ndarray]:
    record = np.dtype([(name, "<" + code) for name, code in header.properties])
    needed = header.count * record.itemsize
    if len(body) < needed:
        raise ValueError(
            f"{source}: binary PLY is truncated: {header.count} vertices need {needed} bytes "
            f"after the header, found {len(body)}"
        )
    table = np.frombuffer(body, dtype=record, count=header.count)
    return {name: table[name].astype(code) for name, code in header.properties}


def _read_ascii(body: bytes, header: _Header, source: os.PathLike[str]) -> dict[str, np.ndarray]:
    width = len(header.properties)
    lines = [line for line in body.splitlines() if line.strip()][: header.count]
    if len(lines) < header.count:
        raise ValueError(
            f"{source}: ASCII PLY is truncated: header promises {header.count} vertices, "
            f"found {len(lines)} lines"
        )
    tokens = b" ".join(lines).split()
    if len(tokens) != header.count * width:
        raise ValueError(
            f"{source}: ASCII PLY vertex lines must each hold {width} values; found "
            f"{len(tokens)} values on {header.count} lines"
        )
    try:
        table = np.array(tokens, dtype=np.float64).reshape(header.count, width)
    except ValueError as exc:
        raise ValueError(f"{source}: ASCII PLY vertex data is not numeric: {exc}") from exc
    columns = {}
    for k, (name, code) in enumerate(header.properties):
        column = table[:, k]
        if np.dtype(code).kind in "iu":
            info = np.iinfo(code)
            bad = (column != np.round(column)) | (column < info.min) | (column > info.max)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{source}: ASCII PLY property {name!r} is declared {code} (integers in "
                    f"[{info.min}, {info.max}]); vertex {row} holds {column[row]!r}"
                )
        columns[name] = column.astype(code)
    return columns


def _standard_fields(
    columns: dict[str, np.ndarray], source: os.PathLike[str]
) -> dict[str, np.ndarray]:
    """Gather x, y, z / intensity / label / red, green, blue under the common keys."""
    out = {"points": np.stack([columns.pop(axis) for axis in "xyz"], axis=1).astype(np.float32)}
    bad = ~np.isfinite(out["points"]).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{source}: {int(bad.sum())} of {len(bad)} vertices have NaN/inf (or beyond float32) "
            f"coordinates, the first is vertex {row}: {out['points'][row].tolist()}"
        )
    if "intensity" in columns:
        out["intensity"] = columns.pop("intensity").astype(np.float32)
    if "label" in columns:
        out["labels"] = columns.pop("label").astype(np.int64)
    if all(name in columns and columns[name].dtype == np.uint8 for name in _COLORS):
        out["colors"] = np.stack([columns.pop(name) for name in _COLORS], axis=1)
    out.update(columns)
    return out
