"""The arrows of ARCHITECTURE.md point down only: parse every import and check it.

cli, demos, batch   -> anything
pointcloud/video/nlp -> itself, common_sparse, bench, datasets   (never another engine)
common_sparse       -> itself (its bench.py may also use bench and datasets)
datasets, bench     -> themselves only
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINES = {"pointcloud", "video", "nlp"}
LOWER = {"common_sparse", "bench", "datasets"}
TOP = {"cli", "_bench_command", "demos", "batch"}


def _module_name(path: Path) -> str:
    if path.is_relative_to(ROOT / "demos"):
        parts = ["edgeinfer", "demos", *path.relative_to(ROOT / "demos").with_suffix("").parts]
    else:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(p for p in parts if p != "__init__")


def _imports(source: str, module: str, is_package: bool) -> list[str]:
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            names += [f"{target}.{alias.name}" for alias in node.names]
    return [n for n in names if n == "edgeinfer" or n.startswith("edgeinfer.")]


def _layer(module: str) -> str:
    parts = module.split(".")
    known = TOP | ENGINES | LOWER
    return parts[1] if len(parts) > 1 and parts[1] in known else "edgeinfer"


def _violations(source: str, module: str, is_package: bool = False) -> list[str]:
    allowed = _allowed(module)
    return [n for n in _imports(source, module, is_package) if _layer(n) not in allowed]


def _allowed(module: str) -> set[str]:
    layer = _layer(module)
    if layer in TOP:
        return TOP | ENGINES | LOWER | {"edgeinfer"}
    if layer in ENGINES:
        return {layer, "edgeinfer"} | LOWER
    if layer == "common_sparse" and module.endswith(".bench"):
        return {"common_sparse", "bench", "datasets", "edgeinfer"}
    return {layer, "edgeinfer"}


SOURCES = sorted([*(ROOT / "edgeinfer").rglob("*.py"), *(ROOT / "demos").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    module = _module_name(path)
    bad = _violations(path.read_text(), module, path.name == "__init__.py")
    assert not bad, f"{module} imports upward or sideways: {bad}"


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        (
            "from ..pointcloud import SparseTensor",
            "edgeinfer.video.stream",
            ["edgeinfer.pointcloud.SparseTensor"],
        ),
        ("import edgeinfer.nlp.spatten", "edgeinfer.pointcloud.nn", ["edgeinfer.nlp.spatten"]),
        ("from edgeinfer import cli", "edgeinfer.bench.runner", ["edgeinfer.cli"]),
        ("from .. import video", "edgeinfer.common_sparse.coords", ["edgeinfer.video"]),
        ("from ..datasets import scans", "edgeinfer.common_sparse.x", ["edgeinfer.datasets.scans"]),
        ("from ..common_sparse import io", "edgeinfer.datasets.x", ["edgeinfer.common_sparse.io"]),
        ("from .. import __version__", "edgeinfer.bench.environment", []),
        ("from ..common_sparse import KernelMap", "edgeinfer.video.skip", []),
        ("from ..bench import Case", "edgeinfer.common_sparse.bench", []),
        ("from edgeinfer.video import create_model", "edgeinfer.demos.video", []),
    ],
)
def test_checker_flags_exactly_the_wrong_arrows(source, module, expected):
    assert _violations(source, module) == expected
