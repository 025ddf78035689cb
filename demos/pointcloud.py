"""Semantic segmentation of a LiDAR scan with the shipped MinkUNet checkpoint.

Generates a fresh street scene (a seed used neither for training nor for the checkpoint's
held-out score), voxelises it, segments it, prints per-class IoU against the generator's labels,
the latency at 1 thread and the voxel count, and writes a coloured PLY and a bird's-eye PNG
(prediction beside ground truth). ``--input scan.bin|.ply|.las`` segments your own scan instead
(no IoU then; points are expected in a sensor frame with z up, sensor near the origin).
Run with ``edgeinfer demo pointcloud`` or ``python -m edgeinfer.demos.pointcloud --seed 3``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from edgeinfer.demos import DemoParser

__all__ = ["CLASS_COLORS", "DEFAULT_SEED", "class_colors", "main"]

DEFAULT_SEED = 7
"""Held out: training used seeds 1000+, the checkpoint's reported IoU seeds 0-3."""

CLASS_COLORS = np.array(
    [[150, 150, 150], [200, 80, 60], [30, 110, 230], [40, 170, 60], [240, 200, 20],
     [220, 40, 200]], dtype=np.uint8,
)
"""RGB per class of ``SCENE_CLASSES`` (ground, building, car, vegetation, pole, pedestrian)."""


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = DemoParser(prog="edgeinfer demo pointcloud", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="scene seed")
    parser.add_argument("--beams", type=int, default=64, help="LiDAR beams of the scene")
    parser.add_argument("--input", type=Path, help="segment this .bin/.ply/.las file instead")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint (default: the shipped one)")
    parser.add_argument("--voxel-size", type=float, default=None,
                        help="voxel size (m) of an imported checkpoint that does not record it")
    parser.add_argument("--features", default=None,
                        help="comma-separated feature columns of an imported checkpoint that "
                             "does not record them, e.g. x,y,z,intensity")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="timed runs for the latency median")
    parser.add_argument("--out", type=Path, default=Path("edgeinfer-demo-out/pointcloud"),
                        help="folder for the PLY and PNG")  # fmt: skip
    args = parser.parse_args(list(argv))
    if not 1 <= args.runs <= 100:
        parser.error(f"--runs must be in [1, 100]; got {args.runs}")
    from edgeinfer.datasets import POINT_SUFFIXES

    parser.check_input(args.input, POINT_SUFFIXES)
    parser.check_input(args.checkpoint, (), "--checkpoint")
    if (args.voxel_size is not None or args.features is not None) and args.checkpoint is None:
        parser.error("--voxel-size and --features are for an imported --checkpoint")
    parser.prepare_out(args.out)
    args.parser = parser
    return args


def _load_model(args: argparse.Namespace):
    """``(model, info)`` of ``--checkpoint`` (or the shipped one), features the demo computes."""
    from edgeinfer.pointcloud import load_pretrained
    from edgeinfer.pointcloud.train import FEATURE_COLUMNS

    if args.checkpoint is None:
        return load_pretrained()
    options = {"voxel_size": args.voxel_size, "features": None if args.features is None else
               tuple(name.strip() for name in args.features.split(","))}  # fmt: skip
    try:
        model, info = load_pretrained(args.checkpoint, **{k: v for k, v in options.items()
                                                          if v is not None})
    except (ValueError, TypeError) as error:
        args.parser.error(f"--checkpoint: {error}")
    unknown = [name for name in info.input.features if name not in FEATURE_COLUMNS]
    if unknown:
        args.parser.error(f"--checkpoint {args.checkpoint} reads features "
                          f"{list(info.input.features)} and the demo cannot compute {unknown}; "
                          f"pass --features with columns of {list(FEATURE_COLUMNS)}")
    return model, info


def _load_scan(args: argparse.Namespace):
    """``(name, points, intensity, labels or None)``."""
    if args.input is None:
        from edgeinfer.datasets import generate_scene

        scan = generate_scene(args.seed, beams=args.beams)
        return f"scene_seed{args.seed}", scan.points, scan.intensity, scan.labels
    from edgeinfer.datasets import read_points

    data = read_points(args.input)
    points = np.asarray(data["points"], dtype=np.float32)
    intensity = data.get("intensity")
    keep = np.isfinite(points).all(axis=1)
    if intensity is not None:
        intensity = np.clip(np.nan_to_num(np.asarray(intensity, np.float32)[keep]), 0, 1)
    return args.input.stem, points[keep], intensity, None


def _segment(model, points, intensity, spec, runs: int):
    """``(per-point labels, voxel count, median ms, spread ms)`` at 1 thread."""
    import torch

    from edgeinfer.pointcloud import sparse_collate
    from edgeinfer.pointcloud.train import voxelize_scan

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = []
        with torch.no_grad():
            for _ in range(runs + 1):  # the first run warms up
                start = time.perf_counter()
                sample = voxelize_scan(points, intensity, spec)
                logits = model(sparse_collate([(sample.coords, sample.feats)])).feats
                seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    timed = [1000 * s for s in seconds[1:]]
    predicted = logits.argmax(dim=1)[sample.inverse].numpy()
    return predicted, len(sample.coords), statistics.median(timed), max(timed) - min(timed)


def class_colors(count: int) -> np.ndarray:
    """``(count, 3)`` uint8 RGB: :data:`CLASS_COLORS` first, then evenly spread hues."""
    import colorsys

    extra = [colorsys.hsv_to_rgb((0.61803 * i) % 1.0, 0.75, 0.9)
             for i in range(max(0, count - len(CLASS_COLORS)))]
    rows = [CLASS_COLORS[:count]] + ([np.array(extra) * 255] if extra else [])
    return np.concatenate(rows).astype(np.uint8)


def _plot(path: Path, points, predicted, labels, class_names, colors) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = [("prediction", predicted)] + ([("ground truth", labels)] if labels is not None
                                            else [])
    figure, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 7), squeeze=False)
    reach = float(min(40.0, np.abs(points[:, :2]).max() + 1.0))
    for axis, (title, classes) in zip(axes[0], panels, strict=True):
        axis.scatter(points[:, 0], points[:, 1], c=colors[classes] / 255.0, s=0.3,
                     marker=".", linewidths=0)
        axis.set(title=f"{title} (bird's-eye view)", xlabel="x (m)", ylabel="y (m)",
                 xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal")
    handles = [Patch(color=colors[i] / 255.0, label=name)
               for i, name in enumerate(class_names)]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(class_names), 7))
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0. ``argv`` e.g. ``["--seed", "3", "--out", "/tmp/pc"]``."""
    import torch

    from edgeinfer.datasets import SCENE_CLASSES, write_ply
    from edgeinfer.pointcloud.train import confusion_matrix, iou_from_confusion

    args = _parse(sys.argv[1:] if argv is None else argv)
    model, info = _load_model(args)
    class_names, voxel_size = list(info.class_names), info.input.voxel_size
    name, points, intensity, labels = _load_scan(args)
    predicted, voxels, median, spread = _segment(model, points, intensity, info.input, args.runs)
    print(f"{name}: {len(points)} points -> {voxels} voxels of {voxel_size} m; {info.model} "
          f"width {model.config.width}, torch {torch.__version__}")
    print(f"checkpoint: {info.source} ({info.format or 'edgeinfer'}), {len(class_names)} "
          f"classes, features {', '.join(info.input.features)}, {info.input.quantize} voxels")
    if labels is not None and tuple(class_names) != SCENE_CLASSES:
        print("no IoU: the checkpoint's classes are not the generated scene's "
              f"({', '.join(SCENE_CLASSES)})")
        labels = None
    print(f"latency (voxelise + network, 1 thread, median of {args.runs}): {median:.1f} ms "
          f"(spread {spread:.1f} ms)")
    if labels is not None:
        confusion = confusion_matrix(labels, predicted, len(class_names))
        per_class, miou = iou_from_confusion(confusion, class_names)
        print("per-point IoU vs the generator's labels:")
        for cls, iou in per_class.items():
            print(f"  {cls:<11} {100 * iou:5.1f}  ({int(confusion[class_names.index(cls)].sum())}"
                  " points)")
        print(f"  {'mIoU':<11} {100 * miou:5.1f}")
    ply, png = args.out / f"{name}_segmented.ply", args.out / f"{name}_bev.png"
    colors = class_colors(len(class_names))
    write_ply(ply, points, colors=colors[predicted], labels=predicted,
              intensity=intensity)
    _plot(png, points, predicted, labels, class_names, colors)
    print(f"wrote {ply}\nwrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
