"""Find the benchmarks engines declare in their ``<engine>/bench.py`` modules.

Discovery goes by module name (``edgeinfer.<package>.bench``) so the harness never imports an
engine statically: the arrows of the layering still point down.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass

from .case import Benchmark

__all__ = ["DiscoveredBenchmark", "discover_benchmarks"]


@dataclass(frozen=True)
class DiscoveredBenchmark:
    """A benchmark and the package (engine) that declared it."""

    package: str
    benchmark: Benchmark


def _package_names(root: str) -> list[str]:
    module = importlib.import_module(root)
    return sorted(info.name for info in pkgutil.iter_modules(module.__path__) if info.ispkg)


def discover_benchmarks(root: str = "edgeinfer") -> list[DiscoveredBenchmark]:
    """Every ``Benchmark`` in ``BENCHMARKS`` of ``<root>.<package>.bench``, sorted by package.

    Raises:
        TypeError: a bench module's ``BENCHMARKS`` is not a sequence of ``Benchmark``.
        ValueError: two benchmarks share a name.
    """
    found: list[DiscoveredBenchmark] = []
    for package in _package_names(root):
        module_name = f"{root}.{package}.bench"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        declared = getattr(module, "BENCHMARKS", None)
        if not isinstance(declared, (tuple, list)) or not all(
            isinstance(item, Benchmark) for item in declared
        ):
            raise TypeError(
                f"{module_name}.BENCHMARKS must be a tuple of edgeinfer.bench.Benchmark; "
                f"got {declared!r}"
            )
        found.extend(DiscoveredBenchmark(package, item) for item in declared)
    names = [item.benchmark.name for item in found]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise ValueError(f"benchmark names must be unique; declared more than once: {clashes}")
    return found
