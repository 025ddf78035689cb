"""The elastic design space of a HAT-style SuperEncoder and the sub-network configs inside it.

A ``SubConfig`` names one sub-network: the embedding (hidden) width and, per layer, the FFN
width and the number of attention heads; its layer count is the length of those tuples (the
first ``layers`` layers of the supernet are used). A ``SearchSpace`` lists the allowed values
of each dimension; ``space.check(config)`` rejects configs outside it with the offending field.

The search works on *genomes*: fixed-length tuples ``(embed, layers, ffn_1..ffn_N,
heads_1..heads_N)`` over the supernet's ``N`` layers, as HAT does (genes of layers beyond
``layers`` are carried but unused); ``space.decode(genome)`` gives the ``SubConfig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Genome", "SearchSpace", "SubConfig"]

Genome = tuple[int, ...]


def _positive_ints(name: str, values: object) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty sequence of positive ints; got {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must hold positive ints; got {value!r} in {values!r}")
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class SubConfig:
    """One sub-network: ``embed_dim``, and per layer ``ffn_dims[i]`` and ``heads[i]``.

    Raises:
        TypeError / ValueError: non-int values, or ``ffn_dims`` and ``heads`` of different
            lengths (one entry per layer is needed in both).
    """

    embed_dim: int
    ffn_dims: tuple[int, ...]
    heads: tuple[int, ...]

    def __post_init__(self) -> None:
        _positive_ints("SubConfig.embed_dim", [self.embed_dim])
        object.__setattr__(self, "embed_dim", int(self.embed_dim))
        object.__setattr__(self, "ffn_dims", _positive_ints("SubConfig.ffn_dims", self.ffn_dims))
        object.__setattr__(self, "heads", _positive_ints("SubConfig.heads", self.heads))
        if len(self.ffn_dims) != len(self.heads):
            raise ValueError(
                "SubConfig needs one FFN width and one head count per layer; got "
                f"{len(self.ffn_dims)} ffn_dims {self.ffn_dims} and {len(self.heads)} heads "
                f"{self.heads}"
            )

    @property
    def layers(self) -> int:
        """Number of encoder layers (the first ``layers`` of the supernet)."""
        return len(self.ffn_dims)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able form: ``{"embed_dim": .., "ffn_dims": [..], "heads": [..]}``."""
        return {"embed_dim": self.embed_dim, "ffn_dims": list(self.ffn_dims),
                "heads": list(self.heads)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> SubConfig:
        """Inverse of ``to_dict``. Raises ValueError on missing keys."""
        missing = {"embed_dim", "ffn_dims", "heads"} - set(data)
        if missing:
            raise ValueError(f"a SubConfig dict needs {sorted(missing)}; got keys {sorted(data)}")
        return cls(data["embed_dim"], tuple(data["ffn_dims"]), tuple(data["heads"]))

    def __str__(self) -> str:
        return (f"E{self.embed_dim} L{self.layers} ffn={list(self.ffn_dims)} "
                f"heads={list(self.heads)}")  # fmt: skip


def _ratio_choices(full: int, steps: int, multiple: int, low: int = 1) -> tuple[int, ...]:
    values = {
        max(multiple, multiple * round(full * k / steps / multiple)) for k in range(low, steps + 1)
    }
    return tuple(sorted(v for v in values if v <= full))


@dataclass(frozen=True)
class SearchSpace:
    """Allowed values per dimension (sorted, distinct). ``head_dim`` is fixed (heads are
    sliced whole); every embedding width must be a multiple of it (an exported HF
    ``BertModel`` derives its head size as hidden / heads).

    Raises:
        TypeError / ValueError: empty or non-positive choices, or embed dims not multiples
            of ``head_dim``.
    """

    embed_dims: tuple[int, ...]
    layer_counts: tuple[int, ...]
    ffn_dims: tuple[int, ...]
    head_counts: tuple[int, ...]
    head_dim: int

    def __post_init__(self) -> None:
        for name in ("embed_dims", "layer_counts", "ffn_dims", "head_counts"):
            values = _positive_ints(f"SearchSpace.{name}", getattr(self, name))
            object.__setattr__(self, name, tuple(sorted(set(values))))
        _positive_ints("SearchSpace.head_dim", [self.head_dim])
        bad = [e for e in self.embed_dims if e % self.head_dim]
        if bad:
            raise ValueError(
                f"SearchSpace.embed_dims must be multiples of head_dim={self.head_dim} (an "
                f"exported BertModel needs hidden = heads x head_dim); got {bad}"
            )

    @classmethod
    def scaled(
        cls, *, hidden: int, layers: int, ffn: int, heads: int, steps: int = 6
    ) -> SearchSpace:
        """The default space of a model of these sizes: ``k/steps`` of each width for
        k = 1..steps (embedding from k = 2, rounded to whole heads), 1..``layers`` layers.
        For all-MiniLM-L6-v2: E in {128..384 by 64}, FFN {256..1536 by 256}, heads
        {2..12 by 2}, layers 1..6."""
        head_dim = hidden // heads
        return cls(
            embed_dims=_ratio_choices(hidden, steps, head_dim, low=2),
            layer_counts=tuple(range(1, layers + 1)),
            ffn_dims=_ratio_choices(ffn, steps, 1),
            head_counts=_ratio_choices(heads, steps, 1),
            head_dim=head_dim,
        )

    @property
    def max_layers(self) -> int:
        return self.layer_counts[-1]

    def largest(self) -> SubConfig:
        """Every dimension at its maximum (the whole supernet)."""
        n = self.max_layers
        return SubConfig(self.embed_dims[-1], (self.ffn_dims[-1],) * n, (self.head_counts[-1],) * n)

    def smallest(self) -> SubConfig:
        """Every dimension at its minimum."""
        n = self.layer_counts[0]
        return SubConfig(self.embed_dims[0], (self.ffn_dims[0],) * n, (self.head_counts[0],) * n)

    def uniform(self, ratio: float, layers: int | None = None) -> SubConfig:
        """Uniformly scaled: each width the choice nearest ``ratio`` x its maximum, the same
        in every layer; ``layers`` default all. Raises ValueError for ``ratio`` outside (0, 1]."""
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1]; got {ratio!r}")
        n = self.max_layers if layers is None else layers

        def nearest(choices: tuple[int, ...]) -> int:
            return min(choices, key=lambda c: (abs(c - ratio * choices[-1]), c))

        config = SubConfig(nearest(self.embed_dims), (nearest(self.ffn_dims),) * n,
                           (nearest(self.head_counts),) * n)  # fmt: skip
        self.check(config)
        return config

    def check(self, config: SubConfig) -> SubConfig:
        """Return ``config`` if it lies in the space.

        Raises:
            TypeError: not a SubConfig. ValueError: a value outside the space (names the
                field, the layer, the allowed values).
        """
        if not isinstance(config, SubConfig):
            raise TypeError(f"config must be a SubConfig; got {type(config).__name__}")
        if config.embed_dim not in self.embed_dims:
            raise ValueError(f"config.embed_dim={config.embed_dim} is outside the search "
                             f"space; allowed: {list(self.embed_dims)}")  # fmt: skip
        if config.layers not in self.layer_counts:
            raise ValueError(f"config has {config.layers} layers, outside the search space; "
                             f"allowed layer counts: {list(self.layer_counts)}")  # fmt: skip
        for field, allowed in (("ffn_dims", self.ffn_dims), ("heads", self.head_counts)):
            for layer, value in enumerate(getattr(config, field)):
                if value not in allowed:
                    raise ValueError(f"config.{field}[{layer}]={value} is outside the search "
                                     f"space; allowed: {list(allowed)}")  # fmt: skip
        return config

    def sample(self, rng: np.random.Generator) -> SubConfig:
        """A uniformly random config (each gene drawn independently, as HAT samples)."""
        return self.decode(self.random_genome(rng))

    def random_genome(self, rng: np.random.Generator) -> Genome:
        """A random genome: each gene uniform over its choices."""
        return tuple(int(rng.choice(choices)) for choices in self.gene_choices())

    def gene_choices(self) -> list[tuple[int, ...]]:
        """Choices per genome position: embed, layers, N x ffn, N x heads."""
        n = self.max_layers
        return [self.embed_dims, self.layer_counts, *[self.ffn_dims] * n,
                *[self.head_counts] * n]  # fmt: skip

    def decode(self, genome: Genome) -> SubConfig:
        """The ``SubConfig`` of a genome (genes of unused layers dropped)."""
        n = self.max_layers
        if len(genome) != 2 + 2 * n:
            raise ValueError(f"a genome of this space has {2 + 2 * n} genes; got {len(genome)}")
        layers = genome[1]
        return self.check(SubConfig(genome[0], tuple(genome[2 : 2 + layers]),
                                    tuple(genome[2 + n : 2 + n + layers])))  # fmt: skip

    def encode(self, config: SubConfig, fill: SubConfig | None = None) -> Genome:
        """A genome of ``config``; unused layers take their genes from ``fill`` (default the
        largest config)."""
        self.check(config)
        fill = fill or self.largest()
        n, used = self.max_layers, config.layers
        ffn = [*config.ffn_dims, *fill.ffn_dims[used:n]]
        heads = [*config.heads, *fill.heads[used:n]]
        ffn += [self.ffn_dims[-1]] * (n - len(ffn))
        heads += [self.head_counts[-1]] * (n - len(heads))
        return (config.embed_dim, used, *ffn, *heads)
