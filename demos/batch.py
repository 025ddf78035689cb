"""``edgeinfer run`` over generated files: every engine, one damaged file, then a resumed rerun.

Writes 3 LiDAR scans (KITTI .bin) and a damaged LAZ, 2 motion videos and a text file of
documents under ``--out``/inputs, then runs ``edgeinfer run`` for the three engines (the
commands are printed): outputs, manifest and ``failures.jsonl`` go to ``--out``/<engine>.
A second point-cloud run shows the resume (every good scan skipped, the damaged one retried
and recorded again).
Run with ``edgeinfer demo batch`` or ``python -m edgeinfer.demos.batch``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from edgeinfer.demos import DemoParser

__all__ = ["main", "write_inputs"]


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = DemoParser(prog="edgeinfer demo batch", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("edgeinfer-demo-out/batch"),
                        help="folder for the generated inputs and the outputs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per item")
    args = parser.parse_args(list(argv))
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    parser.prepare_out(args.out)
    return args


def write_inputs(folder: Path) -> dict[str, Path]:
    """Generated inputs of each engine under ``folder`` (deterministic)."""
    from edgeinfer.batch.samples import write_documents, write_scans, write_videos

    points, video, text = folder / "scans", folder / "videos", folder / "text"
    write_scans(points, 3)
    (points / "damaged.laz").write_bytes(b"LASF" + np.random.default_rng(1).bytes(3000))
    write_videos(video, 2)
    write_documents(text, files=1, per_file=24, split="test")  # short: none is truncated
    return {"pointcloud": points, "video": video, "nlp": text}


def _run(argv: list[str]) -> int:
    from edgeinfer.cli import main as edgeinfer

    print("$ edgeinfer " + " ".join(argv))
    sys.stdout.flush()
    return edgeinfer([*argv, "--no-progress"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0 (the damaged scan is expected to fail: status 1 of its run)."""
    from edgeinfer.batch import read_embeddings

    args = _parse(sys.argv[1:] if argv is None else argv)
    inputs = write_inputs(args.out / "inputs")
    threads = ["--threads", str(args.threads), "--overwrite"]
    flags = {"pointcloud": [], "video": ["--mode", "stream"],
             "nlp": ["--spatten", "default", "--chunk", "8"]}  # fmt: skip
    expected = {"pointcloud": 1, "video": 0, "nlp": 0}  # 1: the damaged scan failed
    for engine, extra in flags.items():
        status = _run(["run", engine, str(inputs[engine]), "--out", str(args.out / engine),
                       *extra, *threads])  # fmt: skip
        if status != expected[engine]:
            print(f"unexpected exit status {status} (expected {expected[engine]})")
            return 1
    first = (args.out / "video" / "clip0.csv").read_text().splitlines()[:3]
    print("video: clip0.csv starts " + " | ".join(first))
    ids, vectors = read_embeddings(args.out / "nlp", "docs0")
    print(f"nlp: {len(ids)} embeddings {vectors.shape[1]}-d, ids {ids[0]}..{ids[-1]}")
    labels = np.load(args.out / "pointcloud" / "scan0.npy")["label"]
    print(f"pointcloud: scan0.npy labels {np.bincount(labels[labels >= 0]).tolist()} per class")
    print("rerun without --overwrite: the good scans are skipped, the damaged one retried")
    _run(["run", "pointcloud", str(inputs["pointcloud"]), "--out",
          str(args.out / "pointcloud"), "--threads", str(args.threads)])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
