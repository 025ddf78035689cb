"""Small generated inputs for the batch tests: scans, videos, documents (and damaged ones)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from edgeinfer.batch.samples import write_scans, write_videos
from edgeinfer.datasets import generate_scene, read_lee_corpus, write_ply


def scans(folder: Path, count: int = 3, beams: int = 8) -> list[Path]:
    """``count`` KITTI ``.bin`` scans (small: ``beams`` LiDAR beams)."""
    return write_scans(folder, count, beams=beams)


def las_scan(path: Path, seed: int = 5, beams: int = 8, point_format: int = 3) -> Path:
    import laspy

    scan = generate_scene(seed, beams=beams)
    header = laspy.LasHeader(point_format=point_format, version="1.2")
    header.scales, header.offsets = [0.001] * 3, [0.0, 0.0, 0.0]
    las = laspy.LasData(header)
    las.x, las.y, las.z = scan.points.T.astype(np.float64)
    las.intensity = np.round(scan.intensity * 65535).astype(np.uint16)
    las.gps_time = np.arange(len(scan.points), dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    las.write(path)
    return path


def ply_scan(path: Path, seed: int = 6, beams: int = 8) -> Path:
    scan = generate_scene(seed, beams=beams)
    colors = np.full((len(scan.points), 3), 7, dtype=np.uint8)
    write_ply(path, scan.points, intensity=scan.intensity, colors=colors)
    return path


def videos(folder: Path, count: int = 2, size: int = 64) -> list[Path]:
    """``count`` MP4s of two generated motion clips each (16 frames)."""
    return write_videos(folder, count, clips=2, size=size)


def documents(count: int = 24) -> list[str]:
    return read_lee_corpus("test")[:count]


def text_files(folder: Path, docs: list[str]) -> dict[str, Path]:
    """The same documents as .txt (with a blank line inside), .jsonl and .csv (a quoted
    newline in every text)."""
    folder.mkdir(parents=True, exist_ok=True)
    half = len(docs) // 2
    txt = folder / "docs.txt"
    txt.write_text("\n".join(docs[:half]) + "\n\n" + "\n".join(docs[half:]) + "\n")
    jsonl = folder / "docs_json.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"doc-{i}", "body": d}) + "\n"
                             for i, d in enumerate(docs)))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "body"])
    for i, doc in enumerate(docs):
        writer.writerow([f"doc-{i}", doc.replace(". ", ".\n", 1)])
    table = folder / "docs_table.csv"
    table.write_text(buffer.getvalue())
    return {"txt": txt, "jsonl": jsonl, "csv": table}


def corrupt(path: Path, seed: int = 1) -> Path:
    """Random bytes behind the right magic for the suffix (a damaged file)."""
    magic = {".laz": b"LASF", ".las": b"LASF", ".ply": b"ply\n"}.get(path.suffix, b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(magic + np.random.default_rng(seed).bytes(4000))
    return path
