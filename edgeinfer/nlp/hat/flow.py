"""The end-to-end HAT flow the benchmark and the demo run: measure, fit, search, compare.

``prepare_flow`` measures a latency dataset of the supernet on this device (current thread
count), fits a predictor and the full model's latency; ``compare_at_budget`` searches the best
sub-network for a fraction of that latency and compares it with the uniformly scaled
sub-network under the same budget: predicted and measured latency, and similarity quality on
the held-out ``test`` split (the search's fitness uses the ``valid`` split).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import corpus_splits
from .latency import LatencyDataset, LatencyProfile, collect_latency
from .measure import measure_config
from .predictor import LatencyPredictor
from .quality import QualityEvaluator
from .search import EvolutionConfig, search, uniform_baseline
from .space import SubConfig

__all__ = ["FULL", "QUICK", "Comparison", "Flow", "FlowSettings", "compare_at_budget",
           "prepare_flow"]  # fmt: skip


@dataclass(frozen=True)
class FlowSettings:
    """Sizes of one run of the flow (``QUICK``: minutes; ``FULL``: HAT's search settings)."""

    latency_samples: int = 600
    latency_repeats: int = 10
    seq_len: int = 128
    predictor: str = "mlp"
    predictor_steps: int = 5000
    target: str = "ref_cpu_ms"  # robust on a shared host; "latency_ms" on a dedicated device
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    fitness_texts: int = 48
    report_texts: int = 64


FULL = FlowSettings()
QUICK = FlowSettings(
    latency_samples=100, latency_repeats=5, predictor_steps=1000,
    evolution=EvolutionConfig(iterations=6, population=24, parents=6, mutations=9,
                              crossovers=9),
    fitness_texts=32, report_texts=48,
)  # fmt: skip


@dataclass
class Flow:
    """Everything measured once per process and thread count."""

    supernet: object
    profile: LatencyProfile
    dataset: LatencyDataset
    predictor: LatencyPredictor
    full_ms: float
    fitness: QualityEvaluator
    report: QualityEvaluator
    settings: FlowSettings


@dataclass(frozen=True)
class Comparison:
    """Searched vs uniformly scaled sub-network under ``budget_ms``."""

    budget_ms: float
    searched: SubConfig
    uniform: SubConfig
    predicted_ms: tuple[float, float]  # searched, uniform
    measured_ms: tuple[float, float]
    quality: tuple[float, float]  # held-out test split


def prepare_flow(
    supernet,
    settings: FlowSettings = QUICK,
    *,
    csv_path: str | Path | None = None,
    progress: bool = False,
) -> Flow:
    """Measure the latency dataset (``csv_path``, default a temporary file), fit the
    predictor and time the full model, all at the current torch thread count."""
    profile = LatencyProfile.current(threads=torch.get_num_threads(), seq_len=settings.seq_len)
    with tempfile.TemporaryDirectory(prefix="edgeinfer-hat-") as folder:
        path = Path(csv_path) if csv_path is not None else Path(folder) / "latency.csv"
        dataset = collect_latency(supernet, path, count=settings.latency_samples,
                                  profile=profile, repeats=settings.latency_repeats,
                                  progress=progress)  # fmt: skip
    predictor = LatencyPredictor.fit(dataset, kind=settings.predictor, target=settings.target,
                                     head_dim=supernet.head_dim,
                                     steps=settings.predictor_steps)  # fmt: skip
    splits = corpus_splits()
    return Flow(
        supernet=supernet, profile=profile, dataset=dataset, predictor=predictor,
        full_ms=predictor.measured_ms(measure_config(supernet, supernet.space.largest(), profile)),
        fitness=QualityEvaluator(supernet, splits["valid"][: settings.fitness_texts]),
        report=QualityEvaluator(supernet, splits["test"][: settings.report_texts]),
        settings=settings,
    )  # fmt: skip


def compare_at_budget(flow: Flow, fraction: float) -> Comparison:
    """Search at ``fraction`` x the full model's measured latency and compare with the
    uniformly scaled sub-network of the same budget.

    Raises:
        ValueError: ``fraction`` outside (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}")
    budget = fraction * flow.full_ms
    result = search(flow.supernet, flow.predictor, budget_ms=budget, fitness=flow.fitness,
                    settings=flow.settings.evolution, profile=flow.profile)  # fmt: skip
    uniform = uniform_baseline(flow.supernet.space, flow.predictor, budget)
    return Comparison(
        budget_ms=budget,
        searched=result.config,
        uniform=uniform,
        predicted_ms=(result.predicted_ms, flow.predictor.predict(uniform)),
        measured_ms=(result.measured_ms, flow.predictor.measured_ms(
            measure_config(flow.supernet, uniform, flow.profile))),
        quality=(flow.report(result.config), flow.report(uniform)),
    )
