"""Generated input files for batch runs (demo, benchmark, tests): deterministic, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_documents", "write_scans", "write_videos"]


def write_scans(folder: Path, count: int, *, beams: int = 16) -> list[Path]:
    """``count`` KITTI ``.bin`` scans of generated street scenes (seeds 0..count-1)."""
    from ..datasets import generate_scene, write_kitti_bin

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        scan = generate_scene(seed, beams=beams)
        paths.append(folder / f"scan{seed}.bin")
        write_kitti_bin(paths[-1], scan.points, scan.intensity)
    return paths


def write_videos(folder: Path, count: int, *, clips: int = 2, size: int = 64) -> list[Path]:
    """``count`` MP4s, each ``clips`` generated motion clips (8 frames each) of cycling
    classes played one after another."""
    from ..datasets import MOTION_CLASSES, generate_motion_clip, write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        frames = np.concatenate([generate_motion_clip(
            MOTION_CLASSES[(index + k) % len(MOTION_CLASSES)], index + k, size=size)
            for k in range(clips)])  # fmt: skip
        paths.append(write_video(folder / f"clip{index}.mp4", frames, fps=8.0))
    return paths


def write_documents(folder: Path, files: int, per_file: int, *,
                    split: str = "background") -> list[Path]:
    """``files`` ``.txt`` files of ``per_file`` Lee corpus documents each, one per line (from
    ``split``, repeated when more are asked for than it holds)."""
    from ..datasets import read_lee_corpus

    folder.mkdir(parents=True, exist_ok=True)
    corpus = read_lee_corpus(split)
    docs = (corpus * (1 + files * per_file // len(corpus)))[: files * per_file]
    paths = []
    for part in range(files):
        paths.append(folder / f"docs{part}.txt")
        lines = docs[part * per_file: (part + 1) * per_file]
        paths[-1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
