"""SpAttenConfig: how many tokens and heads a pruned encoder keeps, and where it prunes.

Keep ratios are reached progressively: with ``m`` pruning layers the ``j``-th (1-based) keeps
``ratio ** e_j`` of each sequence's original tokens (or heads), with ``e_j = j / m`` (geometric)
unless ``token_schedule`` gives the exponents, so the last pruning layer lands exactly on
``ratio``. Layer indices count from 0; a pruning layer prunes after its own attention, before
its feed-forward block, so the FFN of that layer already runs on fewer rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TOKEN_MODES", "LayerPlan", "QuantConfig", "SpAttenConfig", "plan_layers"]

TOKEN_MODES = ("topk", "threshold")


def _check_ratio(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in (0, 1]; got {type(value).__name__}")
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(
            f"{name} must be in (0, 1] (1.0 keeps everything); got {value}. "
            f"Use a fraction such as 0.5."
        )


def _check_schedule(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise TypeError(f"token_schedule must be None or a tuple of floats; got {value!r}")
    if not value or not all(0.0 < v <= 1.0 for v in value) or value[-1] != 1.0:
        raise ValueError(
            f"token_schedule must hold exponents in (0, 1] ending with 1.0 (the last pruning "
            f"layer lands on token_keep); got {value}"
        )
    if list(value) != sorted(value):
        raise ValueError(f"token_schedule must be non-decreasing (a cascade); got {value}")


def _check_layers(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        raise TypeError(f"{name} must be None or a tuple of ints (layer indices); got {value!r}")
    if any(i < 0 for i in value) or list(value) != sorted(set(value)):
        raise ValueError(
            f"{name} must hold distinct, ascending, non-negative layer indices; got {value}"
        )


@dataclass(frozen=True)
class QuantConfig:
    """Quantisation of a pruned encoder (see ``quant.py`` and ``progressive.py``).

    Attributes:
        linear_int8: run the Q/K/V/output/FFN linears as int8 GEMMs (per-output-channel
            symmetric int8 weights, activations quantised per call to 8 bits).
        attn_bits: bits of the first, low-precision Q·K pass of progressive attention
            (2..8); ``None`` computes attention in full precision (fused SDPA).
        recompute_threshold: a query row whose largest low-precision attention probability
            is below this (a flat distribution) is recomputed in full precision; 0 keeps
            every row low-precision, >= 1 recomputes every row.

    Raises:
        TypeError / ValueError: a field of the wrong type or out of range.
    """

    linear_int8: bool = True
    attn_bits: int | None = None
    recompute_threshold: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.linear_int8, bool):
            raise TypeError(f"linear_int8 must be a bool; got {type(self.linear_int8).__name__}")
        bits = self.attn_bits
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int)):
            raise TypeError(f"attn_bits must be an int in [2, 8] or None; got {bits!r}")
        if bits is not None and not 2 <= bits <= 8:
            raise ValueError(
                f"attn_bits must be in [2, 8] (or None for full precision); got {bits}"
            )
        threshold = self.recompute_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(
                f"recompute_threshold must be a number in [0, 1]; got {type(threshold).__name__}"
            )
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(
                f"recompute_threshold must be in [0, 1] (0 = never recompute, 1 = always); "
                f"got {threshold}"
            )


@dataclass(frozen=True)
class SpAttenConfig:
    """Cascade token and head pruning settings (defaults: an efficient setting for MiniLM).

    The default (keep 60% of tokens, reached geometrically over layers 1-3 of MiniLM's 6;
    int8 linears; full-precision attention; importance from 32 query rows) was chosen on the
    tuning split of ``nlp/tuning.py`` (Lee background corpus, not the reported sets): pairwise-
    similarity Spearman to the unpruned model 0.944 on documents and 0.876 on sentences,
    against 0.950 / 0.888 for the same keep ratio over layers 1-4 (slower: more rows reach
    the later layers), 0.923 / 0.829 for keep 0.5, and 0.925 / 0.806 for keep 0.6 after
    layer 0 alone (faster; ``scripts/spatten_frontier.py`` measures speed and quality of
    these settings side by side). Reported quality and speed-up: ``edgeinfer bench nlp``.

    Attributes:
        token_keep: fraction of each sequence's tokens kept after the last token-pruning layer.
        head_keep: fraction of attention heads kept after the last head-pruning layer.
        prune_layers: layers after whose attention tokens are pruned; ``None`` = layers 1 to
            ``n // 2`` of an ``n``-layer model (the first half, after the first layer).
        token_schedule: shape of the token cascade: the ``j``-th pruning layer keeps
            ``token_keep ** token_schedule[j]`` of each sequence's tokens (one exponent per
            pruning layer, non-decreasing, ending with 1.0); ``None`` = geometric, ``j / m``.
        head_prune_layers: layers after which heads are pruned for all later layers;
            ``None`` = every layer except the first and the last.
        token_mode: ``"topk"`` keeps exactly the scheduled count; ``"threshold"`` keeps tokens
            whose cumulative importance is >= ``token_threshold`` x the sequence's mean, but
            never fewer than the scheduled count (the schedule is then a floor).
        token_threshold: relative threshold of ``"threshold"`` mode (>= 0).
        score_queries: importance is estimated from at most this many real query rows per
            sequence, evenly spaced (all rows of a shorter sequence): the scoring cost grows
            linearly, not quadratically, with the length.
        quant: quantisation settings; ``None`` runs every op in full precision (with keep
            ratios 1.0 that reproduces the unpruned model).

    Raises:
        TypeError / ValueError: a field of the wrong type or out of range.
    """

    token_keep: float = 0.6
    head_keep: float = 1.0
    prune_layers: tuple[int, ...] | None = None
    token_schedule: tuple[float, ...] | None = None
    head_prune_layers: tuple[int, ...] | None = None
    token_mode: str = "topk"
    token_threshold: float = 1.0
    score_queries: int = 32
    quant: QuantConfig | None = QuantConfig()

    def __post_init__(self) -> None:
        _check_ratio("token_keep", self.token_keep)
        _check_ratio("head_keep", self.head_keep)
        _check_layers("prune_layers", self.prune_layers)
        _check_layers("head_prune_layers", self.head_prune_layers)
        _check_schedule(self.token_schedule)
        schedule, layers = self.token_schedule, self.prune_layers
        if schedule is not None and layers is not None and len(schedule) != len(layers):
            raise ValueError(
                f"token_schedule needs one exponent per pruning layer: prune_layers={layers} "
                f"has {len(layers)}, token_schedule={schedule} has {len(schedule)}"
            )
        if self.token_mode not in TOKEN_MODES:
            raise ValueError(f"token_mode must be one of {TOKEN_MODES}; got {self.token_mode!r}")
        threshold = self.token_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"token_threshold must be a number; got {type(threshold).__name__}")
        if not (math.isfinite(threshold) and threshold >= 0):
            raise ValueError(f"token_threshold must be finite and >= 0; got {threshold}")
        queries = self.score_queries
        if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
            raise ValueError(f"score_queries must be an int >= 1; got {queries!r}")
        if self.quant is not None and not isinstance(self.quant, QuantConfig):
            raise TypeError(
                f"quant must be a QuantConfig or None (full precision); "
                f"got {type(self.quant).__name__}"
            )


@dataclass(frozen=True)
class LayerPlan:
    """What one layer does: token keep ratio and head count after it (``None`` = no pruning)."""

    token_ratio: float | None
    head_count: int | None
    score_tokens: bool
    score_heads: bool


def _resolve(
    layers: tuple[int, ...] | None, n_layers: int, name: str, default_end: int
) -> tuple[int, ...]:
    if layers is None:
        return tuple(range(1, default_end))
    if layers and layers[-1] >= n_layers:
        raise ValueError(f"{name} must index layers in [0, {n_layers}) of this model; got {layers}")
    return layers


def plan_layers(config: SpAttenConfig, n_layers: int, n_heads: int) -> tuple[LayerPlan, ...]:
    """Per-layer pruning plan of ``config`` for a model with ``n_layers`` and ``n_heads``.

    Layers up to the last pruning layer score tokens (heads) so importance accumulates over
    layers; a ratio of 1.0 plans no pruning and no scoring at all.

    Raises:
        ValueError: a pruning layer index outside the model.
    """
    token_layers = _resolve(config.prune_layers, n_layers, "prune_layers", n_layers // 2 + 1)
    head_layers = _resolve(config.head_prune_layers, n_layers, "head_prune_layers", n_layers - 1)
    prune_tokens = config.token_keep < 1.0 and bool(token_layers)
    prune_heads = config.head_keep < 1.0 and bool(head_layers)
    schedule = config.token_schedule
    if schedule is None:
        schedule = tuple((j + 1) / len(token_layers) for j in range(len(token_layers)))
    elif len(schedule) != len(token_layers):
        raise ValueError(
            f"token_schedule needs one exponent per pruning layer; this {n_layers}-layer model "
            f"prunes at {token_layers} but token_schedule={schedule}"
        )
    plans = []
    for layer in range(n_layers):
        ratio = heads = None
        if prune_tokens and layer in token_layers:
            ratio = config.token_keep ** schedule[token_layers.index(layer)]
        if prune_heads and layer in head_layers:
            step = head_layers.index(layer) + 1
            fraction = config.head_keep ** (step / len(head_layers))
            heads = max(1, round(fraction * n_heads))
        plans.append(LayerPlan(
            token_ratio=ratio,
            head_count=heads,
            score_tokens=prune_tokens and layer <= token_layers[-1],
            score_heads=prune_heads and layer <= head_layers[-1],
        ))  # fmt: skip
    return tuple(plans)
