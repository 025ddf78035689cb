"""``edgeinfer run ENGINE INPUTS... --out DIR``: the command-line face of ``run_batch``.

Exit status 0 when every item succeeded (or was done before), 1 when some failed (listed in
``DIR/failures.jsonl``), 2 on bad usage (one line, no traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_run_parser", "parse_settings"]

_ENGINE_OPTIONS = {
    "pointcloud": ("voxel_size", "features"),
    "video": ("mode", "gate", "clip_length", "annotate"),
    "nlp": ("spatten", "field", "id_field", "format", "chunk", "max_length", "batch_size"),
}
_ALIASES = {"keep": "token_keep", "heads": "head_keep"}


class RunUsageError(ValueError):
    """Bad input to ``edgeinfer run`` (the CLI prints it as one line, exit 2)."""


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if "/" in text:
        return tuple(_value(part) for part in text.split("/") if part.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_settings(text: str, kind: type, flag: str, defaults: dict[str, Any] | None = None):
    """``kind(**settings)`` from ``"name=value,name=value"`` (``"default"``: ``kind()``).

    Values: ints, floats, ``none``, ``true``/``false``, tuples as ``1/2/3``. ``keep`` and
    ``heads`` stand for ``token_keep`` and ``head_keep``.

    Raises:
        RunUsageError: a malformed pair, an unknown name (the known ones listed), or a value
            ``kind`` refuses.
    """
    fields = {f.name for f in dataclasses.fields(kind)}
    values = dict(defaults or {})
    if text.strip().lower() != "default":
        for pair in (p for p in text.split(",") if p.strip()):
            name, sep, raw = pair.partition("=")
            name = _ALIASES.get(name.strip(), name.strip())
            if not sep:
                raise RunUsageError(f"{flag}: expected name=value pairs separated by commas "
                                    f"(or 'default'); got {pair!r}")  # fmt: skip
            if name not in fields:
                raise RunUsageError(f"{flag}: unknown setting {name!r}; known: "
                                    f"{', '.join(sorted(fields))}")  # fmt: skip
            values[name] = _value(raw)
    try:
        return kind(**values)
    except (TypeError, ValueError) as exc:
        raise RunUsageError(f"{flag}: {exc}") from None


def add_run_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``run`` sub-command to the CLI's sub-parsers."""
    run = sub.add_parser(
        "run", help="run an engine over folders of real files (resumable, fault-isolated)",
        description="Run an engine's predictor over files, folders and glob patterns into "
                    "--out: a manifest makes reruns resume, failures go to failures.jsonl, "
                    "outputs appear atomically. Exit 0 all done, 1 some failed, 2 bad usage.")
    run.add_argument("engine", help="pointcloud, video or nlp")
    run.add_argument("inputs", nargs="+", help="files, folders (searched recursively), globs")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--model", help="a shipped model name (default: the engine's)")
    run.add_argument("--checkpoint", type=Path, help="a checkpoint file (or HF folder) instead")
    run.add_argument("--threads", type=int, help="torch threads per item (default: this "
                     "process's setting locally, 1 per Dask worker)")
    run.add_argument("--scheduler", default="local",
                     help="local, dask (a LocalCluster of --workers) or tcp://host:port")
    run.add_argument("--workers", type=int, help="Dask LocalCluster workers (default: cores)")
    run.add_argument("--overwrite", action="store_true", help="redo every item")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    point = run.add_argument_group("pointcloud")
    point.add_argument("--voxel-size", type=float, help="voxel size (m) of an imported checkpoint")
    point.add_argument("--features", help="feature columns of an imported checkpoint, "
                       "e.g. x,y,z,intensity")
    video = run.add_argument_group("video")
    video.add_argument("--mode", choices=("clip", "stream"), help="per clip (default) or per "
                       "frame through the causal streaming model")
    video.add_argument("--gate", help="stream mode: skip unchanged frames, GateConfig settings "
                       "as threshold=0.1,max_skip=30 (or 'default')")
    video.add_argument("--clip-length", type=int, help="clip mode: frames per window")
    video.add_argument("--annotate", action="store_true", help="also write an annotated MP4")
    text = run.add_argument_group("nlp")
    text.add_argument("--spatten", help="prune with SpAtten: settings as keep=0.6,heads=1.0 "
                      "(or 'default')")
    text.add_argument("--field", help="the text field of .jsonl/.csv/.parquet rows (text)")
    text.add_argument("--id-field", help="the id field (default: line or row number)")
    text.add_argument("--format", choices=("npy", "parquet"), help="embedding files (npy)")
    text.add_argument("--chunk", type=int, help="documents per item (1000)")
    text.add_argument("--max-length", type=int, help="tokens kept per text")
    text.add_argument("--batch-size", type=int, help="texts per forward (32)")
    run.set_defaults(func=_cmd_run)
    return run


def _given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name)
    return value not in (None, False)


def _check_engine_options(args: argparse.Namespace) -> None:
    from ..cli import ENGINES

    if args.engine not in ENGINES:
        raise RunUsageError(f"edgeinfer run: unknown engine {args.engine!r}; choose from "
                            f"{', '.join(ENGINES)}")  # fmt: skip
    for engine, names in _ENGINE_OPTIONS.items():
        if engine == args.engine:
            continue
        wrong = [n for n in names if _given(args, n) and n not in _ENGINE_OPTIONS[args.engine]]
        if wrong:
            flags = ", ".join("--" + n.replace("_", "-") for n in wrong)
            raise RunUsageError(f"edgeinfer run {args.engine}: {flags} is for the {engine} "
                                "engine")  # fmt: skip
    if args.model is not None and args.checkpoint is not None:
        raise RunUsageError("edgeinfer run: pass --model or --checkpoint, not both")
    if args.checkpoint is not None and not args.checkpoint.exists():
        raise RunUsageError(f"edgeinfer run: --checkpoint {str(args.checkpoint)!r} does not "
                            "exist")  # fmt: skip
    for flag in ("threads", "workers", "clip_length", "chunk", "max_length", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise RunUsageError(f"edgeinfer run: --{flag.replace('_', '-')} must be >= 1; "
                                f"got {value}")  # fmt: skip


def _build(args: argparse.Namespace):
    """``(predictor, task)`` from the arguments."""
    from .tasks import PointTask, TextTask, VideoTask

    model = {} if args.model is None and args.checkpoint is None else {
        "model": str(args.checkpoint if args.checkpoint is not None else args.model)}
    threads = args.threads if args.threads is not None else (
        1 if args.scheduler != "local" else None)
    if args.engine == "pointcloud":
        from ..pointcloud import Segmenter

        features = None if args.features is None else tuple(
            f.strip() for f in args.features.split(",") if f.strip())
        return Segmenter(**model, voxel_size=args.voxel_size, features=features,
                         threads=threads), PointTask()  # fmt: skip
    if args.engine == "video":
        from ..video import GateConfig, VideoClassifier

        mode = args.mode or "clip"
        if args.gate is not None and mode != "stream":
            raise RunUsageError("edgeinfer run video: --gate needs --mode stream")
        gate = None if args.gate is None else parse_settings(args.gate, GateConfig, "--gate")
        return VideoClassifier(**model, mode=mode, gate=gate, clip_length=args.clip_length,
                               threads=threads), VideoTask(annotate=args.annotate)  # fmt: skip
    from ..nlp import Embedder, SpAttenConfig

    spatten = None if args.spatten is None else parse_settings(args.spatten, SpAttenConfig,
                                                               "--spatten")  # fmt: skip
    task = TextTask(field=args.field or "text", id_field=args.id_field,
                    chunk=args.chunk or 1000, format=args.format or "npy")  # fmt: skip
    if task.format == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise RunUsageError("edgeinfer run nlp: --format parquet needs pyarrow: pip "
                                "install pyarrow") from None  # fmt: skip
    return Embedder(**model, spatten=spatten, max_length=args.max_length,
                    batch_size=args.batch_size or 32, threads=threads), task  # fmt: skip


def _cmd_run(args: argparse.Namespace) -> int:
    from .._paths import folder_problem
    from ..cli import UsageError
    from .inputs import InputError
    from .runner import run_batch

    try:
        _check_engine_options(args)
        predictor, task = _build(args)
    except (RunUsageError, ValueError, TypeError) as exc:
        raise UsageError(str(exc) if str(exc).startswith("edgeinfer") else
                         f"edgeinfer run {args.engine}: {exc}") from None
    problem = folder_problem(args.out)
    if problem is not None:
        raise UsageError(f"edgeinfer run: --out: cannot write to {str(args.out)!r} ({problem})")
    try:
        predictor.loaded  # noqa: B018 - fail on a bad model before any item runs
    except (OSError, ValueError, TypeError, ImportError) as exc:
        raise UsageError(f"edgeinfer run {args.engine}: cannot load the model: "
                         f"{type(exc).__name__}: {exc}") from None
    try:
        summary = run_batch(predictor, task, args.inputs, args.out, scheduler=args.scheduler,
                            workers=args.workers, overwrite=args.overwrite,
                            progress=not args.no_progress)  # fmt: skip
    except (InputError, ValueError) as exc:
        raise UsageError(f"edgeinfer run {args.engine}: {exc}") from None
    print(f"edgeinfer run {args.engine}: {summary.describe()}")
    for failure in summary.failures[:10]:
        print(f"  failed: {failure['path']} ({failure['error']}: {failure['message']})",
              file=sys.stderr)
    if len(summary.failures) > 10:
        print(f"  ... and {len(summary.failures) - 10} more in {args.out / 'failures.jsonl'}",
              file=sys.stderr)
    print(f"outputs in {args.out} (manifest.jsonl, failures.jsonl)")
    return 1 if summary.failed else 0
