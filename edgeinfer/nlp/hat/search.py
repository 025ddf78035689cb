"""Evolutionary search for the best sub-network under a latency budget (HAT's algorithm).

A population of random genomes whose *predicted* latency is within the budget is evolved:
each iteration keeps the ``parents`` fittest, adds ``mutations`` children (a random parent,
each gene resampled with probability ``mutation_prob``) and ``crossovers`` children (two
random parents, each gene from either with equal probability); children over the budget are
rejected and drawn again. Fitness is the quality of the sub-network with the supernet's
(inherited) weights on held-out text (``QualityEvaluator``). The winner is exported and its
latency measured on this device.

Defaults are HAT's: 30 iterations, population 125, 25 parents, 50 mutations with p=0.3, 50
crossovers.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .latency import LatencyProfile
from .measure import measure_config
from .space import Genome, SearchSpace, SubConfig

__all__ = [
    "EvolutionConfig",
    "SearchResult",
    "evolve",
    "search",
    "uniform_baseline",
    "uniform_candidates",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvolutionConfig:
    """Evolution settings (HAT's defaults). ``max_tries`` bounds the redraws of a child that
    is over the budget (then the parent / a random valid genome is used)."""

    iterations: int = 30
    population: int = 125
    parents: int = 25
    mutations: int = 50
    crossovers: int = 50
    mutation_prob: float = 0.3
    max_tries: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "population", "parents", "max_tries"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvolutionConfig.{name} must be >= 1; got {getattr(self, name)}")
        if self.mutations < 0 or self.crossovers < 0:
            raise ValueError("EvolutionConfig.mutations and crossovers must be >= 0")
        if self.parents > self.population:
            raise ValueError(f"EvolutionConfig.parents ({self.parents}) must not exceed "
                             f"population ({self.population})")  # fmt: skip
        if not 0 <= self.mutation_prob <= 1:
            raise ValueError(f"mutation_prob must be in [0, 1]; got {self.mutation_prob}")


@dataclass(frozen=True)
class SearchResult:
    """The winner: ``config``, its ``predicted_ms`` and ``measured_ms`` (on this device, in the
    predictor's measure: see ``measure.py``), ``quality`` (fitness), the ``budget_ms``, the
    best fitness after each iteration (``history``) and how many distinct sub-networks were
    evaluated."""

    config: SubConfig
    predicted_ms: float
    measured_ms: float
    quality: float
    budget_ms: float
    history: tuple[float, ...] = field(default=())
    evaluated: int = 0


def _mutate(space: SearchSpace, genome: Genome, prob: float, rng) -> Genome:
    return tuple(int(rng.choice(choices)) if rng.random() < prob else gene
                 for gene, choices in zip(genome, space.gene_choices(), strict=True))  # fmt: skip


def _crossover(a: Genome, b: Genome, rng) -> Genome:
    return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b, strict=True))


def _valid_children(make: Callable[[], Genome], fits: Callable[[list[Genome]], np.ndarray],
                    count: int, tries: int) -> list[Genome]:  # fmt: skip
    children: list[Genome] = []
    for _ in range(tries):
        if len(children) >= count:
            break
        batch = [make() for _ in range(2 * (count - len(children)))]
        children += [g for g, ok in zip(batch, fits(batch), strict=True) if ok]
    return children[:count]


def _offspring(space, parents: list[Genome], settings: EvolutionConfig, rng, fits) -> list[Genome]:
    def pick() -> Genome:
        return parents[rng.integers(len(parents))]

    mutated = _valid_children(lambda: _mutate(space, pick(), settings.mutation_prob, rng), fits,
                              settings.mutations, settings.max_tries)  # fmt: skip
    crossed = _valid_children(lambda: _crossover(pick(), pick(), rng), fits,
                              settings.crossovers, settings.max_tries)  # fmt: skip
    return mutated + crossed


def evolve(
    space: SearchSpace,
    fitness: Callable[[SubConfig], float],
    latency: Callable[[list[SubConfig]], np.ndarray],
    budget_ms: float,
    settings: EvolutionConfig = EvolutionConfig(),
) -> tuple[SubConfig, list[float], int]:
    """Run the evolution: ``(best config, best fitness per iteration, configs evaluated)``.
    ``latency(configs)`` predicts milliseconds; the budget must admit some genome.

    Raises:
        ValueError: no random genome within the budget was found.
    """
    rng = np.random.default_rng(settings.seed)

    def fits(genomes: list[Genome]) -> np.ndarray:
        return latency([space.decode(g) for g in genomes]) <= budget_ms

    population = _valid_children(lambda: space.random_genome(rng), fits, settings.population,
                                 settings.max_tries)  # fmt: skip
    if not population:
        raise ValueError(f"no random sub-network fits the budget of {budget_ms:.2f} ms")
    history, scores = [], {}
    for iteration in range(settings.iterations):
        for genome in population:
            config = space.decode(genome)
            if config not in scores:
                scores[config] = fitness(config)
        ranked = sorted(population, key=lambda g: -scores[space.decode(g)])
        parents = ranked[: settings.parents]
        history.append(scores[space.decode(parents[0])])
        logger.info("iteration %d: best %.4f", iteration, history[-1])
        if iteration == settings.iterations - 1:
            break
        population = parents + _offspring(space, parents, settings, rng, fits)
    return space.decode(parents[0]), history, len(scores)


def search(
    supernet,
    predictor,
    *,
    budget_ms: float,
    fitness: Callable[[SubConfig], float] | None = None,
    settings: EvolutionConfig | None = None,
    profile: LatencyProfile | None = None,
    measure: bool = True,
) -> SearchResult:
    """Best sub-network of ``supernet`` whose predicted latency is at most ``budget_ms``.

    ``predictor``: a ``LatencyPredictor``; ``fitness(config)`` higher is better, default a
    ``QualityEvaluator`` on 64 sentences of the ``valid`` split; ``settings`` default HAT's.
    ``profile``: where the result will run (default this machine with the predictor's
    threads and input shape); the predictor warns if it was fitted elsewhere.
    ``measure=False`` skips measuring the winner (``measured_ms`` is then NaN).

    A budget below the smallest sub-network's predicted latency warns and returns the
    smallest sub-network.

    Raises:
        ValueError: a budget that is not a positive finite number.
    """
    if isinstance(budget_ms, bool) or not isinstance(budget_ms, (int, float)) or not (
        np.isfinite(budget_ms) and budget_ms > 0
    ):
        raise ValueError(f"budget_ms must be a positive number of milliseconds; got {budget_ms!r}")
    settings = settings or EvolutionConfig()
    if fitness is None:
        from .data import corpus_splits
        from .quality import QualityEvaluator

        fitness = QualityEvaluator(supernet, corpus_splits()["valid"][:64])
    fitted = predictor.profile
    profile = profile or LatencyProfile.current(fitted.threads, fitted.seq_len, fitted.batch)
    predictor.check_profile(profile)
    space = supernet.space
    smallest = space.smallest()
    floor = predictor.predict(smallest)
    if budget_ms < floor:
        warnings.warn(
            f"budget_ms={budget_ms:.2f} is below the smallest sub-network's predicted latency "
            f"({floor:.2f} ms, {smallest}); returning the smallest sub-network",
            stacklevel=2,
        )
        best, history, evaluated = smallest, [], 0
    else:
        best, history, evaluated = evolve(space, fitness, predictor.predict_many, budget_ms,
                                          settings)  # fmt: skip
    measured = (predictor.measured_ms(measure_config(supernet, best, profile)) if measure
                else float("nan"))  # fmt: skip
    return SearchResult(best, predictor.predict(best), measured, fitness(best), float(budget_ms),
                        tuple(history), evaluated)  # fmt: skip


def uniform_candidates(space: SearchSpace) -> list[SubConfig]:
    """Every uniformly scaled sub-network: one width ratio for embedding, FFN and heads (the
    nearest choices, the same in every layer), at every layer count."""
    ratios = np.linspace(0.05, 1.0, 96)
    return list(dict.fromkeys(space.uniform(r, layers=n) for n in space.layer_counts
                              for r in ratios))  # fmt: skip


def uniform_baseline(space: SearchSpace, predictor, budget_ms: float) -> SubConfig:
    """The uniformly scaled sub-network (``uniform_candidates``) with the largest predicted
    latency within ``budget_ms`` (the fastest one if none fits): the conventional way to
    shrink a model to a budget, and HAT's baseline."""
    candidates = uniform_candidates(space)
    predicted = predictor.predict_many(candidates)
    fitting = [(p, c) for p, c in zip(predicted, candidates, strict=True) if p <= budget_ms]
    if not fitting:
        return candidates[int(np.argmin(predicted))]
    return max(fitting, key=lambda item: item[0])[1]
