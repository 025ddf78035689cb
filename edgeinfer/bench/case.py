"""How an engine declares its benchmark: a ``Benchmark`` holding a factory of ``Case``s.

An engine's ``<engine>/bench.py`` defines ``BENCHMARKS: tuple[Benchmark, ...]``; the harness
finds it (``discover_benchmarks``). Cases are built by a factory so that discovering
benchmarks builds no model and allocates nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Benchmark", "Case", "PlotSpec"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

QualityFn = Callable[[Any, Any, Any], Mapping[str, float]]


@dataclass(frozen=True)
class Case:
    """One row of a benchmark table.

    ``setup()`` builds the input (and any models) once, untimed; ``baseline(state)`` and
    ``candidate(state)`` then run on that *same* state. ``quality(baseline_out,
    candidate_out, state)`` returns named numbers for the quality column (max abs error,
    cosine, accuracy ...). ``params`` are numeric knobs of the case (the x-axis of a plot).
    ``quick`` cases are the ones ``--quick`` runs. ``requires`` names importable modules the
    case needs (a peer library); without them the row is reported as skipped.
    """

    name: str
    setup: Callable[[], Any]
    baseline: Callable[[Any], Any]
    candidate: Callable[[Any], Any]
    quality: QualityFn | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    quick: bool = True
    count_macs: bool = True
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Case.name must be a non-empty string; got {self.name!r}")
        for attr in ("setup", "baseline", "candidate"):
            if not callable(getattr(self, attr)):
                raise TypeError(f"Case {self.name!r}: {attr} must be callable")
        if self.quality is not None and not callable(self.quality):
            raise TypeError(f"Case {self.name!r}: quality must be callable or None")
        for key, value in self.params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"Case {self.name!r}: params[{key!r}] must be a number; got {value!r}"
                )


@dataclass(frozen=True)
class PlotSpec:
    """A curve-shaped benchmark: plot latency and speed-up against ``params[x]``.

    ``series`` optionally names a param whose values get one line each; ``series_labels``
    names those values in the legend (``((value, "name"), ...)``; unnamed values show as
    ``series=value``). ``tradeoff`` lists quality keys: each adds a panel of speed-up against
    that quality value, one point per case that reports it (e.g. speed-up vs cosine).

    Raises:
        TypeError: a field of the wrong type.
    """

    x: str
    xlabel: str
    series: str | None = None
    log_x: bool = False
    series_labels: tuple[tuple[float, str], ...] = ()
    tradeoff: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        labels = self.series_labels
        if not isinstance(labels, tuple) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], str)
            for pair in labels
        ):
            raise TypeError(f"series_labels must be a tuple of (value, name) pairs; got {labels!r}")
        if not isinstance(self.tradeoff, tuple) or not all(
            isinstance(key, str) for key in self.tradeoff
        ):
            raise TypeError(f"tradeoff must be a tuple of quality keys; got {self.tradeoff!r}")

    def series_label(self, value: object) -> str:
        """The legend name of series ``value`` ("" without a series)."""
        if self.series is None:
            return ""
        for known, name in self.series_labels:
            if known == value:
                return name
        return f"{self.series}={value:g}" if isinstance(value, int | float) else f"{value}"


@dataclass(frozen=True)
class Benchmark:
    """A named list of cases comparing ``baseline`` against edgeinfer.

    ``isolate_memory``: measure each side's peak RSS in a fresh process (after the case's
    setup) instead of in the shared benchmark process; costs two more setups per case.
    """

    name: str
    title: str
    baseline: str
    cases: Callable[[], Sequence[Case]]
    candidate: str = "edgeinfer"
    description: str = ""
    plot: PlotSpec | None = None
    isolate_memory: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                "Benchmark.name must be lower-case letters, digits, '-' or '_' "
                f"(it is typed on the command line); got {self.name!r}"
            )
        if not callable(self.cases):
            raise TypeError(
                f"Benchmark {self.name!r}: cases must be a callable returning the cases "
                "(so discovery builds nothing)"
            )

    def build_cases(self, *, quick: bool = False) -> list[Case]:
        """The benchmark's cases (only the quick ones when ``quick``); names must be unique."""
        cases = list(self.cases())
        for case in cases:
            if not isinstance(case, Case):
                raise TypeError(
                    f"Benchmark {self.name!r}: cases() must return Case objects; "
                    f"got {type(case).__name__}"
                )
        names = [case.name for case in cases]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"Benchmark {self.name!r}: duplicate case names {duplicates}")
        return [case for case in cases if case.quick] if quick else cases
