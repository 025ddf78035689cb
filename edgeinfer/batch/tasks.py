"""Per engine: which files it reads, how they split into items, what it writes for each.

A task is plain settings (it pickles to a worker); ``items(source)`` splits one input file into
work items (one per scan or video; text files into chunks of documents), ``outputs(item)``
names what an item writes (relative to the output folder, known before it runs) and
``process(predictor, item, folder)`` reads the item, runs the predictor and writes the outputs,
each through a temporary name (``manifest.atomic_path``).

Outputs:

- point clouds: LAS/LAZ in → the same file with the predicted class in the ``classification``
  field and a float32 ``score`` extra dimension (every other field kept); PLY in → PLY with
  ``label`` and ``score`` properties (coordinates, intensity and colours kept); KITTI ``.bin`` in
  → ``.npy`` of records ``(label int32, score float32)``, one per point.
- video: ``<name>.csv`` with ``frame, class, class_name, score, skipped`` per frame (stream
  mode) or ``clip, first_frame, last_frame, class, class_name, score`` per window (clip mode);
  with ``annotate``, ``<name>.annotated.mp4`` (each frame labelled with its prediction).
- text: per chunk ``k`` of a file, ``<name>.<k>.npy`` (float32 ``(n, D)``) and
  ``<name>.<k>.ids.json`` (the documents' ids), or ``<name>.<k>.parquet`` (columns ``id``,
  ``embedding``); :func:`read_embeddings` joins a file's chunks back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import Source
from .manifest import atomic_path

__all__ = ["ENGINE_TASKS", "Item", "PointTask", "TextTask", "VideoTask", "read_embeddings"]


@dataclass(frozen=True)
class Item:
    """One unit of work: ``source`` (the input file), ``part`` (chunk number, 0 for a whole
    file) and ``span`` (the chunk's location, task-specific), named by :attr:`key`."""

    source: Source
    part: int = 0
    span: tuple[Any, ...] = ()
    chunked: bool = False

    @property
    def key(self) -> str:
        relative = self.source.relative
        return f"{relative}#{self.part:05d}" if self.chunked else relative


# -- point clouds -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointTask:
    """Segment every point of each scan (see the module docstring for the outputs)."""

    engine = "pointcloud"
    suffixes = (".las", ".laz", ".ply", ".bin")

    def settings(self) -> dict[str, Any]:
        return {}

    def items(self, source: Source) -> Iterator[Item]:
        yield Item(source)

    def outputs(self, item: Item) -> list[str]:
        suffix = Path(item.source.path).suffix.lower()
        return [item.source.name + (".npy" if suffix == ".bin" else suffix)]

    def process(self, predictor, item: Item, folder: Path) -> dict[str, Any]:
        from ..datasets import read_kitti_bin, read_ply, write_ply

        path, (output,) = Path(item.source.path), self.outputs(item)
        suffix = path.suffix.lower()
        if suffix in (".las", ".laz"):
            return _segment_las(predictor, path, folder / output)
        data = read_kitti_bin(path) if suffix == ".bin" else read_ply(path)
        labels, scores = predictor.segment(data["points"], data.get("intensity"))
        with atomic_path(folder / output) as temporary:
            if suffix == ".bin":
                table = np.empty(len(labels), dtype=[("label", "<i4"), ("score", "<f4")])
                table["label"], table["score"] = labels, scores
                np.save(temporary, table)
            else:
                write_ply(temporary, data["points"], colors=data.get("colors"), labels=labels,
                          intensity=data.get("intensity"), scores=scores)  # fmt: skip
        return {"points": len(labels)}


_WIDER_FORMAT = {0: 6, 1: 6, 2: 7, 3: 7, 4: 9, 5: 10}  # LAS 1.4 formats with 8-bit classes


def _segment_las(predictor, path: Path, output: Path) -> dict[str, Any]:
    import laspy

    from ..datasets import read_las_data

    las = read_las_data(path)
    points = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    intensity = np.asarray(las.intensity, dtype=np.float32) / np.float32(65535.0)
    labels, scores = predictor.segment(points, intensity)
    if len(labels) and labels.max() > 31 and las.header.point_format.id in _WIDER_FORMAT:
        las = laspy.convert(las, point_format_id=_WIDER_FORMAT[las.header.point_format.id],
                            file_version="1.4")  # fmt: skip
    las.classification = labels.astype(np.uint8)  # LAS points are finite: no -1 here
    if "score" not in las.point_format.dimension_names:
        las.add_extra_dim(laspy.ExtraBytesParams(
            name="score", type=np.float32, description="edgeinfer class probability"))
    las.score = scores
    with atomic_path(output) as temporary:
        las.write(temporary)
    return {"points": len(labels)}


# -- video --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoTask:
    """Classify each video per clip or per frame (see the module docstring for the outputs)."""

    annotate: bool = False
    engine = "video"
    suffixes = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

    def settings(self) -> dict[str, Any]:
        return {"annotate": self.annotate}

    def items(self, source: Source) -> Iterator[Item]:
        yield Item(source)

    def outputs(self, item: Item) -> list[str]:
        names = [item.source.name + ".csv"]
        return names + ([item.source.name + ".annotated.mp4"] if self.annotate else [])

    def process(self, predictor, item: Item, folder: Path) -> dict[str, Any]:
        from ..datasets import iter_video_frames

        path, outputs = Path(item.source.path), self.outputs(item)
        rows = predictor.classify(iter_video_frames(path))
        names = predictor.info.class_names
        with atomic_path(folder / outputs[0]) as temporary, \
                open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if predictor.mode == "stream":
                writer.writerow(["frame", "class", "class_name", "score", "skipped"])
                writer.writerows([r.frame, r.label, names[r.label], f"{r.score:.9g}",
                                  int(r.skipped)] for r in rows)  # fmt: skip
            else:
                writer.writerow(["clip", "first_frame", "last_frame", "class", "class_name",
                                 "score"])  # fmt: skip
                writer.writerows([r.clip, r.first, r.last, r.label, names[r.label],
                                  f"{r.score:.9g}"] for r in rows)  # fmt: skip
        if self.annotate:
            _annotate(path, folder / outputs[1], rows, names, predictor.mode)
        frames = len(rows) if predictor.mode == "stream" else (rows[-1].last + 1 if rows else 0)
        return {"frames": frames}


def _annotate(path: Path, output: Path, rows, names, mode: str) -> None:
    import cv2

    from ..datasets import VideoWriter, iter_video_frames, video_info

    per_frame = []
    for row in rows:
        if mode == "stream":
            per_frame.append(f"{names[row.label]} {row.score:.2f}"
                             + (" (reused)" if row.skipped else ""))  # fmt: skip
        else:
            per_frame += [f"clip {row.clip}: {names[row.label]} {row.score:.2f}"] * (
                row.last - row.first + 1)
    fps = video_info(path).fps or 25.0
    writer = None
    with atomic_path(output) as temporary:
        try:
            for index, frame in enumerate(iter_video_frames(path)):
                if writer is None:
                    writer = VideoWriter(temporary, frame.shape[:2], fps=float(fps))
                picture = np.ascontiguousarray(frame)
                text = per_frame[index] if index < len(per_frame) else ""
                for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
                    cv2.putText(picture, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour,
                                width, cv2.LINE_AA)  # fmt: skip
                writer.write(picture)
        finally:
            if writer is not None:
                writer.close()


# -- text ---------------------------------------------------------------------------------------

def _lines(handle: io.BufferedReader) -> Iterator[tuple[int, int, bytes]]:
    """``(line number from 1, end offset, raw line)`` of a binary file."""
    offset = 0
    for number, raw in enumerate(handle, start=1):
        offset += len(raw)
        yield number, offset, raw


def _decode(raw: bytes, path: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: line {number} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from None  # fmt: skip


@dataclass(frozen=True)
class TextTask:
    """Embed every document (see the module docstring for the outputs).

    ``.txt``: one document per non-blank line, id = line number. ``.jsonl``: one JSON object
    per non-blank line, the text in ``field``, the id in ``id_field`` (default: line number).
    ``.csv``: a header row, then one document per row, same fields (id default: row number).
    ``.parquet`` (needs pyarrow): same fields (id default: row number).
    """

    field: str = "text"
    id_field: str | None = None
    chunk: int = 1000
    format: str = "npy"
    engine = "nlp"
    suffixes = (".txt", ".jsonl", ".csv", ".parquet")

    def __post_init__(self) -> None:
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1:
            raise ValueError(f"chunk must be an int >= 1 (documents per item); got {self.chunk!r}")
        if self.format not in ("npy", "parquet"):
            raise ValueError(f"format must be 'npy' or 'parquet'; got {self.format!r}")

    def settings(self) -> dict[str, Any]:
        return {"field": self.field, "id_field": self.id_field, "chunk": self.chunk,
                "format": self.format}  # fmt: skip

    # splitting -----------------------------------------------------------------------------

    def items(self, source: Source) -> Iterator[Item]:
        suffix = Path(source.path).suffix.lower()
        if suffix == ".parquet":
            yield from self._parquet_items(source)
            return
        # spans: (start byte, stop byte, its first line number, first record number, header)
        header: tuple[str, ...] = ()
        position, last = 0, 0  # where the previous record ended: byte offset, line number
        with open(source.path, "rb") as handle:
            if suffix == ".csv":
                records = _csv_records(handle, source.path)
                first_row = next(records, None)
                if first_row is not None:
                    header, position, last = tuple(first_row[0]), first_row[1], first_row[2]
            else:
                records = ((raw, end, number) for number, end, raw in _lines(handle)
                           if raw.strip())  # fmt: skip
            spans, count, record = [], 0, 0
            for _, end, line in records:
                if count == 0:
                    opened = (position, last + 1, record)
                count, record, position, last = count + 1, record + 1, end, line
                if count == self.chunk:
                    spans.append((opened[0], position, opened[1], opened[2], header))
                    count = 0
            if count:
                spans.append((opened[0], position, opened[1], opened[2], header))
        if not spans:  # no document: one empty item, so the file still gets its (empty) outputs
            spans.append((position, position, last + 1, 0, header))
        for part, span in enumerate(spans):
            yield Item(source, part, span, chunked=True)

    def _parquet_items(self, source: Source) -> Iterator[Item]:
        parquet = _pyarrow_parquet()
        metadata = parquet.ParquetFile(source.path).metadata
        part, before = 0, 0
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            for start in range(0, max(rows, 1), self.chunk):
                yield Item(source, part, (group, start, min(rows, start + self.chunk), before),
                           chunked=True)  # fmt: skip
                part += 1
            before += rows
        if part == 0:
            yield Item(source, 0, (None, 0, 0, 0), chunked=True)

    def outputs(self, item: Item) -> list[str]:
        stem = f"{item.source.name}.{item.part:05d}"
        if self.format == "parquet":
            return [stem + ".parquet"]
        return [stem + ".npy", stem + ".ids.json"]

    # reading -------------------------------------------------------------------------------

    def read(self, item: Item) -> tuple[list[str], list[str]]:
        """``(ids, texts)`` of one item's documents."""
        suffix = Path(item.source.path).suffix.lower()
        if suffix == ".parquet":
            return self._read_parquet(item)
        start, stop, first_line, first_record, header = item.span
        with open(item.source.path, "rb") as handle:
            handle.seek(start)
            block = handle.read(stop - start)
        ids, texts = [], []
        if suffix == ".csv":
            rows = csv.reader(io.StringIO(_decode(block, item.source.path, first_line),
                                          newline=""))  # fmt: skip
            for offset, row in enumerate(row for row in rows if row):
                where = f"{item.source.path}: row {first_record + offset + 1}"
                if len(row) != len(header):
                    raise ValueError(f"{where} has {len(row)} fields; the header has "
                                     f"{len(header)}")  # fmt: skip
                values = dict(zip(header, row, strict=True))
                ids.append(self._id(values, first_record + offset + 1, where))
                texts.append(self._text(values, where))
            return ids, texts
        for number, raw in enumerate(block.splitlines(keepends=False), start=first_line):
            line = _decode(raw, item.source.path, number)
            if not line.strip():
                continue
            if suffix == ".txt":
                ids.append(str(number))
                texts.append(line)
                continue
            where = f"{item.source.path}: line {number}"
            try:
                values = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where} is not JSON ({exc})") from None
            if not isinstance(values, dict):
                raise ValueError(f"{where} holds a JSON {type(values).__name__}; expected an "
                                 "object")  # fmt: skip
            ids.append(self._id(values, number, where))
            texts.append(self._text(values, where))
        return ids, texts

    def _read_parquet(self, item: Item) -> tuple[list[str], list[str]]:
        group, start, stop, before = item.span
        if group is None:
            return [], []
        columns = [self.field] + ([self.id_field] if self.id_field else [])
        table = _pyarrow_parquet().ParquetFile(item.source.path).read_row_group(
            group, columns=columns).slice(start, stop - start)
        texts = table.column(self.field).to_pylist()
        where = f"{item.source.path}: row group {group}"
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise ValueError(f"{where}, row {before + start + bad[0] + 1}: {self.field!r} is "
                             f"{texts[bad[0]]!r}, not a string")  # fmt: skip
        if self.id_field:
            ids = [str(v) for v in table.column(self.id_field).to_pylist()]
        else:
            ids = [str(before + start + i + 1) for i in range(len(texts))]
        return ids, texts

    def _text(self, values: dict, where: str) -> str:
        if self.field not in values:
            raise ValueError(f"{where} has no field {self.field!r} (fields: "
                             f"{sorted(values)}); pass --field")  # fmt: skip
        text = values[self.field]
        if not isinstance(text, str):
            raise ValueError(f"{where}: {self.field!r} is {type(text).__name__}, not a string")
        return text

    def _id(self, values: dict, number: int, where: str) -> str:
        if self.id_field is None:
            return str(number)
        if self.id_field not in values:
            raise ValueError(f"{where} has no id field {self.id_field!r}")
        return str(values[self.id_field])

    # writing -------------------------------------------------------------------------------

    def process(self, predictor, item: Item, folder: Path) -> dict[str, Any]:
        ids, texts = self.read(item)
        embeddings = predictor.embed(texts) if texts else np.zeros((0, predictor.dim),
                                                                   dtype=np.float32)
        outputs = self.outputs(item)
        if self.format == "parquet":
            import pyarrow as pa

            width = embeddings.shape[1]
            values = pa.array(embeddings.reshape(-1), type=pa.float32())
            table = pa.table({"id": pa.array(ids, type=pa.string()),
                              "embedding": pa.FixedSizeListArray.from_arrays(values, width)})
            with atomic_path(folder / outputs[0]) as temporary:
                _pyarrow_parquet().write_table(table, temporary)
        else:
            with atomic_path(folder / outputs[0]) as temporary:
                np.save(temporary, embeddings)
            with atomic_path(folder / outputs[1]) as temporary:
                temporary.write_text(json.dumps(ids) + "\n", encoding="utf-8")
        return {"documents": len(ids)}


def _csv_records(handle, path: str) -> Iterator[tuple[list[str], int, int]]:
    """``(row, end offset, last line number)`` of each non-blank CSV record (a quoted field
    may span lines; the reader consumes exactly one record's lines per row)."""
    consumed = [0, 0]  # end offset, line number of the last line read

    def lines():
        for number, end, raw in _lines(handle):
            consumed[:] = end, number
            yield _decode(raw, path, number)

    for row in csv.reader(lines()):
        if row:
            yield row, consumed[0], consumed[1]


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as parquet
    except ImportError as exc:
        raise ImportError("parquet input and output need pyarrow: pip install pyarrow") from exc
    return parquet


def read_embeddings(folder: str | Path, name: str) -> tuple[list[str], np.ndarray]:
    """``(ids, embeddings (N, D) float32)`` of one input file's chunks in ``folder`` (written by
    a text run, ``.npy`` or ``.parquet``), joined in order.

    Raises:
        FileNotFoundError: no chunk of ``name`` in ``folder``.
    """
    root = Path(folder)
    npy = sorted(root.glob(f"{name}.[0-9][0-9][0-9][0-9][0-9].npy"))
    parquet = sorted(root.glob(f"{name}.[0-9][0-9][0-9][0-9][0-9].parquet"))
    if not npy and not parquet:
        raise FileNotFoundError(f"no embeddings of {name!r} in {root}")
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    for path in npy:
        blocks.append(np.load(path))
        ids += json.loads(path.with_name(path.name[:-4] + ".ids.json").read_text())
    for path in parquet:
        table = _pyarrow_parquet().read_table(path)
        ids += table.column("id").to_pylist()
        column = table.column("embedding").combine_chunks()
        width = column.type.list_size
        blocks.append(column.values.to_numpy().reshape(-1, width).astype(np.float32))
    return ids, np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)


ENGINE_TASKS: dict[str, type] = {"pointcloud": PointTask, "video": VideoTask, "nlp": TextTask}
"""The task class of each engine."""

