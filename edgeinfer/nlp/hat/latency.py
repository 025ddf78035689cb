"""Latency dataset: sub-networks measured on this device, saved as a resumable CSV.

Each sampled ``SubConfig`` is measured with ``measure_pair`` (exported ``BertModel``, timed
interleaved with the reference sub-network through the shared harness, thread count set by
its ``device_profile``). The first two rows are the largest and the smallest sub-network,
then uniform random samples (HAT's sampling) from ``seed``.

The CSV has one row per sub-network: the config, the ``Measurement`` fields and the
``LatencyProfile`` (threads, sequence length, batch, CPU model, torch version), so a file
always says where it was measured. Collection appends and flushes row by row: rerunning with
the same path, seed and profile continues where it stopped.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ...bench import DeviceProfile, device_profile
from .measure import MEASURES, Measurement, latency_inputs, measure_pair, reference_config
from .space import SearchSpace, SubConfig

__all__ = [
    "COLUMNS",
    "LatencyDataset",
    "LatencyProfile",
    "collect_latency",
    "read_latency_csv",
]

logger = logging.getLogger(__name__)

_TIMES = tuple(f.name for f in fields(Measurement))
COLUMNS = ("embed_dim", "layers", "ffn_dims", "heads", *_TIMES, "repeats", "threads", "seq_len",
           "batch", "cpu", "torch")  # fmt: skip


@dataclass(frozen=True)
class LatencyProfile:
    """Where latencies were (or are to be) measured: thread count, input shape, CPU, torch."""

    threads: int = 1
    seq_len: int = 128
    batch: int = 1
    cpu: str = ""
    torch: str = ""

    def __post_init__(self) -> None:
        for name in ("threads", "seq_len", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LatencyProfile.{name} must be a positive int; got {value!r}")

    @classmethod
    def current(cls, threads: int = 1, seq_len: int = 128, batch: int = 1) -> LatencyProfile:
        """This machine's CPU and torch version with the given threads and input shape."""
        from ...bench.environment import cpu_model

        return cls(threads, seq_len, batch, cpu_model(), torch.__version__)

    def describe(self) -> str:
        """One line: ``1 thread, seq 128, batch 1, <cpu>, torch <version>``."""
        return (f"{DeviceProfile(self.threads).label}, seq {self.seq_len}, batch {self.batch}, "
                f"{self.cpu or 'unknown CPU'}, torch {self.torch or '?'}")  # fmt: skip


@dataclass(frozen=True)
class LatencyDataset:
    """Measured sub-networks: ``configs``, ``columns`` (each ``Measurement`` field as an
    ``(N,)`` float64 array) and the ``profile``."""

    configs: tuple[SubConfig, ...]
    columns: dict[str, np.ndarray]
    profile: LatencyProfile

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def reference_ms(self) -> float:
        """The reference's typical CPU time: median over rows of ``ref_cpu_ms``."""
        return float(np.median(self.columns["ref_cpu_ms"]))

    def values(self, measure: str) -> np.ndarray:
        """``(N,)`` milliseconds of ``measure`` (one of ``MEASURES``); ``ref_cpu_ms`` is each
        row's CPU ratio to the reference times ``reference_ms``.

        Raises:
            ValueError: unknown measure.
        """
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {MEASURES}; got {measure!r}")
        if measure == "ref_cpu_ms":
            return self.columns["ref_cpu_ratio"] * self.reference_ms
        return self.columns[measure]


def _planned(space: SearchSpace, count: int, seed: int) -> list[SubConfig]:
    rng = np.random.default_rng(seed)
    anchors = [space.largest(), space.smallest()]
    return (anchors + [space.sample(rng) for _ in range(max(0, count - 2))])[:count]


def _row(config: SubConfig, measured: Measurement, repeats: int, profile: LatencyProfile) -> dict:
    return {
        "embed_dim": config.embed_dim, "layers": config.layers,
        "ffn_dims": " ".join(map(str, config.ffn_dims)),
        "heads": " ".join(map(str, config.heads)),
        **{k: f"{v:.5f}" for k, v in asdict(measured).items()}, "repeats": repeats,
        **asdict(profile),
    }  # fmt: skip


def _check_resume(path: Path, plan: list[SubConfig], profile: LatencyProfile) -> int:
    if not path.exists() or path.stat().st_size == 0:
        return 0
    done = read_latency_csv(path)
    if done.profile != profile:
        raise ValueError(
            f"{path} was measured under [{done.profile.describe()}] but this run is "
            f"[{profile.describe()}]; use another path for another profile"
        )
    if len(done) > len(plan) or list(done.configs) != plan[: len(done)]:
        raise ValueError(
            f"{path} holds {len(done)} rows that are not the first samples of this run's plan "
            f"(another seed or space?); pass the seed it was collected with or another path"
        )
    return len(done)


def collect_latency(
    supernet,
    path: str | Path,
    *,
    count: int = 2000,
    profile: LatencyProfile | None = None,
    seed: int = 0,
    warmup: int = 2,
    repeats: int = 10,
    progress: bool = True,
    on_row: Callable[[int, SubConfig, Measurement], None] | None = None,
) -> LatencyDataset:
    """Measure ``count`` sub-networks of ``supernet`` (a ``SuperEncoder``) and append them to
    the CSV at ``path`` (resumed if it exists); returns the whole dataset.

    ``profile`` default ``LatencyProfile.current()`` (1 thread, seq 128, batch 1).
    ``on_row(index, config, measurement)`` is called after each new row.

    Raises:
        ValueError: ``count`` < 2, or an existing file measured under another profile or
            plan, or a corrupt existing file (see ``read_latency_csv``).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ValueError(f"count must be an int >= 2 (largest and smallest first); got {count!r}")
    path = Path(path)
    profile = profile or LatencyProfile.current()
    plan = _planned(supernet.space, count, seed)
    done = _check_resume(path, plan, profile)
    inputs = latency_inputs(profile, supernet.model.config.vocab_size, seed)
    reference = supernet.export_subnet(reference_config(supernet.space))
    path.parent.mkdir(parents=True, exist_ok=True)
    bar = _progress_bar(count, done, progress)
    with device_profile(DeviceProfile(profile.threads)), path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if done == 0:
            writer.writeheader()
        for index in range(done, count):
            model = supernet.export_subnet(plan[index])
            measured = measure_pair(model, reference, inputs, warmup=warmup, repeats=repeats)
            writer.writerow(_row(plan[index], measured, repeats, profile))
            handle.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{measured.latency_ms:.1f} ms")
            if on_row is not None:
                on_row(index, plan[index], measured)
    if bar is not None:
        bar.close()
    return read_latency_csv(path)


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="latency", unit="net")


def _parse_row(row: dict, line: int, path: Path) -> tuple[SubConfig, tuple, tuple]:
    try:
        missing = [key for key, value in row.items() if key is not None and value is None]
        if missing:  # a row cut short, e.g. by a killed run: never read as a shorter profile
            raise ValueError(f"cut short: no {', '.join(missing)}")
        ffn = tuple(int(v) for v in row["ffn_dims"].split())
        heads = tuple(int(v) for v in row["heads"].split())
        config = SubConfig(int(row["embed_dim"]), ffn, heads)
        if config.layers != int(row["layers"]):
            raise ValueError(f"layers={row['layers']} but {config.layers} ffn_dims/heads")
        times = tuple(float(row[k]) for k in _TIMES)
        if not all(np.isfinite(t) and t > 0 for t in times):
            raise ValueError(", ".join(f"{k}={row[k]}" for k in _TIMES) + " (need > 0)")
        profile = (int(row["threads"]), int(row["seq_len"]), int(row["batch"]), row["cpu"],
                   row["torch"])  # fmt: skip
    except (TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{path} line {line}: not a valid latency row ({error}); the file is "
                         f"corrupt: fix or delete it and collect again") from error  # fmt: skip
    return config, times, profile


def read_latency_csv(path: str | Path) -> LatencyDataset:
    """Read a CSV written by ``collect_latency``.

    Raises:
        FileNotFoundError: no file. ValueError: missing columns, a malformed row (line
            number and reason, including a last row cut short), no rows, or rows from
            different profiles.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no latency CSV at {path}; write one with collect_latency")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} is not a latency CSV: columns {missing} are missing "
                             f"(header {reader.fieldnames}); expected {list(COLUMNS)}")  # fmt: skip
        rows = [_parse_row(row, number, path) for number, row in enumerate(reader, start=2)]
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 1))
        cut = rows and handle.read(1) != b"\n"
    if cut:  # every row collect_latency writes ends a line: this one was cut mid-write
        raise ValueError(f"{path} line {len(rows) + 1}: not a valid latency row (cut short: no "
                         "line end, e.g. a killed run); delete that line and collect again")
    if not rows:
        raise ValueError(f"{path} has a header but no rows; collect some with collect_latency")
    profiles = sorted({r[2] for r in rows})
    if len(profiles) > 1:
        raise ValueError(f"{path} mixes rows from {len(profiles)} profiles {profiles}; keep one "
                         f"profile per file")  # fmt: skip
    times = np.array([r[1] for r in rows], dtype=np.float64)
    columns = {name: times[:, i] for i, name in enumerate(_TIMES)}
    return LatencyDataset(tuple(r[0] for r in rows), columns, LatencyProfile(*profiles[0]))
