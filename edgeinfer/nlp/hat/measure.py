"""Measuring one sub-network's latency on this device, interleaved with a fixed reference.

A sub-network is timed as the exported HF ``BertModel`` (what would be deployed) on a
``batch x seq_len`` input of random tokens. ``measure_pair`` runs the shared harness's
``time_pair``: the sub-network and a *reference* sub-network (``reference_config``: the
uniform half-width one) are called alternately, so both see the same moments of the machine.
It reports the sub-network's wall median, main-thread CPU median and minimum, and its median
per-repeat ratio to the reference (wall and CPU).

Why the ratio: on a shared host other processes slow a measurement down by factors that
drift over seconds. A low-priority process is mostly *waiting* (wall time measures the
neighbours); at one thread its CPU time is the time it really ran, but that still inflates
under cache and core sharing. Measured twice, the same 60 sub-networks differed by 7.3 %
(MAPE) in minimum CPU time but by 2.4 % in CPU ratio to the interleaved reference. The
``ref_cpu_ms`` measure is that ratio times the reference's typical CPU time (the median over
a dataset): an absolute-looking latency with the drift divided out. On a dedicated device the
plain wall median (``latency_ms``) is the measure to use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ...bench import DeviceProfile, Stats, device_profile, summarize, time_pair
from .space import SearchSpace, SubConfig

__all__ = [
    "MEASURES",
    "Measurement",
    "latency_inputs",
    "measure_config",
    "measure_latency",
    "measure_pair",
    "reference_config",
]

MEASURES = ("latency_ms", "cpu_ms", "cpu_min_ms", "ref_cpu_ms")


@dataclass(frozen=True)
class Measurement:
    """One sub-network's timing (milliseconds and ratios to the interleaved reference)."""

    latency_ms: float  # wall median
    cpu_ms: float  # main-thread CPU median
    cpu_min_ms: float
    ref_wall_ratio: float  # median over repeats of wall(sub-network) / wall(reference)
    ref_cpu_ratio: float
    ref_cpu_ms: float  # the reference's own CPU median in this measurement

    def value(self, measure: str, reference_ms: float | None = None) -> float:
        """The ``measure`` (one of ``MEASURES``) in ms; ``ref_cpu_ms`` is the CPU ratio times
        ``reference_ms`` (default: the reference's CPU median measured here).

        Raises:
            ValueError: unknown measure.
        """
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {MEASURES}; got {measure!r}")
        if measure == "ref_cpu_ms":
            return self.ref_cpu_ratio * (self.ref_cpu_ms if reference_ms is None else reference_ms)
        return float(getattr(self, measure))


def reference_config(space: SearchSpace) -> SubConfig:
    """The reference every sub-network is timed against: the uniform half-width one."""
    return space.uniform(0.5)


def latency_inputs(profile, vocab_size: int, seed: int = 0) -> dict:
    """Random token ids ``(batch, seq_len)`` of ``profile`` (ids >= 1000, past BERT's special
    tokens, in a vocabulary that large) and an all-ones mask: only the shape matters."""
    generator = torch.Generator().manual_seed(seed)
    shape = (profile.batch, profile.seq_len)
    ids = torch.randint(min(1000, vocab_size // 2), vocab_size, shape, generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@torch.inference_mode()
def measure_latency(
    model: torch.nn.Module, inputs: dict, *, warmup: int = 2, repeats: int = 10
) -> tuple[Stats, Stats]:
    """Wall and main-thread CPU time (ms) of ``model(**inputs)`` alone: ``warmup`` untimed
    calls, then ``repeats`` timed ones, under the caller's thread settings.

    Raises:
        ValueError: ``repeats`` < 1 or ``warmup`` < 0.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0; got {repeats}, {warmup}")
    for _ in range(warmup):
        model(**inputs)
    wall, cpu = [], []
    for _ in range(repeats):
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        model(**inputs)
        wall.append((time.perf_counter() - wall0) * 1e3)
        cpu.append((time.thread_time() - cpu0) * 1e3)
    return summarize(wall), summarize(cpu)


def _ratio(numerator: Stats, denominator: Stats) -> float:
    return float(np.median(np.asarray(numerator.samples) / np.maximum(denominator.samples, 1e-9)))


@torch.inference_mode()
def measure_pair(
    model: torch.nn.Module, reference: torch.nn.Module, inputs: dict, *, warmup: int = 2,
    repeats: int = 10,
) -> Measurement:  # fmt: skip
    """``model`` timed interleaved with ``reference`` on ``inputs`` (``edgeinfer.bench``'s
    ``time_pair``: alternating order, ``warmup`` untimed rounds, ``repeats`` timed ones).

    Raises:
        ValueError: ``repeats`` < 1 or ``warmup`` < 0.
    """
    timing = time_pair(lambda x: reference(**x), lambda x: model(**x), inputs,
                       warmup=warmup, repeats=repeats, min_repeats=repeats)  # fmt: skip
    cand_wall, cand_cpu = timing.candidate_wall, timing.candidate_cpu
    return Measurement(
        latency_ms=cand_wall.median, cpu_ms=cand_cpu.median, cpu_min_ms=min(cand_cpu.samples),
        ref_wall_ratio=_ratio(cand_wall, timing.baseline_wall),
        ref_cpu_ratio=_ratio(cand_cpu, timing.baseline_cpu),
        ref_cpu_ms=timing.baseline_cpu.median,
    )  # fmt: skip


def measure_config(
    supernet, config: SubConfig, profile, *, warmup: int = 3, repeats: int = 20
) -> Measurement:
    """``config`` exported and measured against the reference under ``profile`` (its threads
    set through ``device_profile``, its input shape)."""
    model = supernet.export_subnet(config)
    reference = supernet.export_subnet(reference_config(supernet.space))
    inputs = latency_inputs(profile, supernet.model.config.vocab_size)
    with device_profile(DeviceProfile(profile.threads)):
        return measure_pair(model, reference, inputs, warmup=warmup, repeats=repeats)
