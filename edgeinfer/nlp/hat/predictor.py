"""Latency predictors fitted on a measured ``LatencyDataset``: linear and MLP (HAT).

Both see the 10 features of ``features.py``, each divided by its maximum over the training
rows (HAT divides by the space's maxima), and predict latency divided by the largest training
latency. Both minimise the *relative* squared error ``((pred - y) / y)^2`` because the quality
that matters is the relative error (MAPE) over latencies that span 50x:

- ``linear``: weighted least squares with an intercept (closed form);
- ``mlp``: HAT's network, 3 hidden ReLU layers of 400, Adam, minibatches of 128; the step
  with the lowest validation error is kept.

Rows are shuffled with ``seed`` and split 80/10/10 into train / valid / test (HAT's split);
``metrics`` holds the held-out test MAPE (%) and RMSE (ms). A predictor remembers the
``LatencyProfile`` it was fitted under and warns, naming both, when asked about another.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._checkpoint import is_envelope, open_envelope, read_checkpoint_file, write_envelope
from .features import FEATURE_NAMES, config_features
from .latency import LatencyDataset, LatencyProfile
from .measure import MEASURES, Measurement
from .space import SubConfig

__all__ = ["KINDS", "PREDICTOR_MODEL", "LatencyPredictor", "split_indices"]

KINDS = ("linear", "mlp")
PREDICTOR_MODEL = "hat-latency-predictor"
"""The ``model`` name of a latency predictor's checkpoint envelope."""
_FORMAT = "edgeinfer.hat.latency-predictor/1"


def split_indices(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Shuffled 80/10/10 ``train``/``valid``/``test`` row indices of ``n`` rows (n >= 10)."""
    if n < 10:
        raise ValueError(f"a latency dataset needs >= 10 rows to split 80/10/10; got {n}")
    order = np.random.default_rng(seed).permutation(n)
    train, valid = int(0.8 * n), int(0.9 * n)
    return {"train": order[:train], "valid": order[train:valid], "test": order[valid:]}


def _mlp(hidden: int = 400, layers: int = 3) -> nn.Sequential:
    parts: list[nn.Module] = []
    width = len(FEATURE_NAMES)
    for _ in range(layers):
        parts += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*parts, nn.Linear(width, 1))


def _relative_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((pred - target) / target).pow(2).mean()


def _fit_mlp(x, y, valid_x, valid_y, *, steps: int, lr: float, batch: int, seed: int):
    """Train on one thread (restored after): the network is tiny, and more threads only
    spin-wait (measured 12 vs 100 ms per step at 1 vs 2 threads on a busy 2-core host)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():  # also when called under no_grad (benchmark setup)
            return _train_mlp(x, y, valid_x, valid_y, steps=steps, lr=lr, batch=batch,
                              seed=seed)  # fmt: skip
    finally:
        torch.set_num_threads(saved)


def _train_mlp(x, y, valid_x, valid_y, *, steps: int, lr: float, batch: int, seed: int):
    torch.manual_seed(seed)
    net = _mlp()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    x, y = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    vx, vy = torch.from_numpy(valid_x).float(), torch.from_numpy(valid_y).float()
    generator = torch.Generator().manual_seed(seed)
    best, best_state = float("inf"), None
    for step in range(steps):
        rows = torch.randint(0, len(x), (min(batch, len(x)),), generator=generator)
        loss = _relative_mse(net(x[rows]).squeeze(1), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 49 or step == steps - 1:
            with torch.no_grad():
                error = float(_relative_mse(net(vx).squeeze(1), vy))
            if error < best:
                best, best_state = error, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return net.eval()


@dataclass
class LatencyPredictor:
    """A fitted predictor: ``predict(config)`` -> milliseconds on ``profile``.

    Build with ``LatencyPredictor.fit``; ``metrics`` holds held-out ``mape`` (%), ``rmse``
    (ms), ``max_ape`` (%) and the split sizes; ``split`` the row indices of the fit;
    ``reference_ms`` the dataset's reference CPU time (used by the ``ref_cpu_ms`` measure).
    """

    kind: str
    target: str
    profile: LatencyProfile
    head_dim: int
    feature_norm: np.ndarray
    latency_norm: float
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    split: dict[str, np.ndarray] = field(default_factory=dict)
    reference_ms: float | None = None

    @classmethod
    def fit(
        cls,
        dataset: LatencyDataset,
        *,
        kind: str = "mlp",
        target: str = "latency_ms",
        head_dim: int = 32,
        seed: int = 0,
        steps: int = 5000,
        lr: float = 1e-3,
        batch: int = 128,
    ) -> LatencyPredictor:
        """Fit a ``kind`` ("linear" or "mlp") predictor of the measure ``target`` (one of
        ``MEASURES``: "latency_ms" wall median, "cpu_ms", "cpu_min_ms", "ref_cpu_ms"; see
        ``measure.py``) on the train rows, select on valid, report on test.

        Raises:
            TypeError: not a LatencyDataset. ValueError: unknown kind/target, < 10 rows.
        """
        if not isinstance(dataset, LatencyDataset):
            raise TypeError(f"dataset must be a LatencyDataset (read_latency_csv); got "
                            f"{type(dataset).__name__}")  # fmt: skip
        if kind not in KINDS or target not in MEASURES:
            raise ValueError(f"kind must be one of {KINDS} and target one of {MEASURES}; got "
                             f"kind={kind!r}, target={target!r}")  # fmt: skip
        split = split_indices(len(dataset), seed)
        raw = config_features(dataset.configs, seq_len=dataset.profile.seq_len, head_dim=head_dim)
        y_all = np.asarray(dataset.values(target), dtype=np.float64)
        norm = raw[split["train"]].max(axis=0)
        latency_norm = float(y_all[split["train"]].max())
        x, y = raw / norm, y_all / latency_norm
        tr, va = split["train"], split["valid"]
        if kind == "linear":
            design = np.c_[x[tr], np.ones(len(tr))] / y[tr, None]
            coef = np.linalg.lstsq(design, np.ones(len(tr)), rcond=None)[0]
            params: dict[str, Any] = {"coef": torch.from_numpy(coef)}
        else:
            net = _fit_mlp(x[tr], y[tr], x[va], y[va], steps=steps, lr=lr, batch=batch, seed=seed)
            params = {k: v.detach().clone() for k, v in net.state_dict().items()}
        predictor = cls(kind, target, dataset.profile, head_dim, norm, latency_norm, params,
                        split=split, reference_ms=dataset.reference_ms)  # fmt: skip
        predictor.metrics = predictor.evaluate(dataset, split["test"])
        predictor.metrics.update({f"n_{k}": float(len(v)) for k, v in split.items()})
        return predictor

    def _predict_normalised(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "linear":
            return np.c_[x, np.ones(len(x))] @ self.params["coef"].numpy()
        net = _mlp()
        net.load_state_dict(self.params)
        with torch.no_grad():
            return net(torch.from_numpy(x).float()).squeeze(1).double().numpy()

    def predict_many(
        self, configs: list[SubConfig], profile: LatencyProfile | None = None
    ) -> np.ndarray:
        """Predicted milliseconds ``(N,)`` of ``configs``; warns if ``profile`` (where the
        prediction is to be used) differs from the one fitted on."""
        if profile is not None:
            self.check_profile(profile)
        raw = config_features(configs, seq_len=self.profile.seq_len, head_dim=self.head_dim)
        return self._predict_normalised(raw / self.feature_norm) * self.latency_norm

    def predict(self, config: SubConfig, profile: LatencyProfile | None = None) -> float:
        """Predicted milliseconds of one ``config`` (see ``predict_many``)."""
        return float(self.predict_many([config], profile)[0])

    def measured_ms(self, measurement: Measurement) -> float:
        """A ``Measurement`` in this predictor's target measure (and reference time)."""
        return measurement.value(self.target, self.reference_ms)

    def check_profile(self, profile: LatencyProfile) -> bool:
        """``True`` if ``profile`` is the fitted one; else warn (naming both) and ``False``."""
        if profile == self.profile:
            return True
        warnings.warn(
            f"latency predictor fitted on [{self.profile.describe()}] is used for "
            f"[{profile.describe()}]: its predictions may be far off; collect a latency "
            f"dataset under this profile and fit a new predictor",
            stacklevel=3,
        )
        return False

    def evaluate(self, dataset: LatencyDataset, rows: np.ndarray | None = None) -> dict:
        """``mape`` (%), ``max_ape`` (%) and ``rmse`` (ms) on ``rows`` of ``dataset``
        (default all)."""
        rows = np.arange(len(dataset)) if rows is None else np.asarray(rows)
        measured = np.asarray(dataset.values(self.target))[rows]
        predicted = self.predict_many([dataset.configs[i] for i in rows])
        ape = np.abs(predicted - measured) / measured * 100
        rmse = float(np.sqrt(np.mean((predicted - measured) ** 2)))
        return {"mape": float(ape.mean()), "max_ape": float(ape.max()), "rmse": rmse}

    def save(self, path: str | Path) -> Path:
        """Write the predictor (with its profile, split and metrics) to ``path`` atomically, as
        an edgeinfer checkpoint envelope."""
        config = {"kind": self.kind, "target": self.target, "head_dim": self.head_dim,
                  "profile": vars(self.profile).copy()}  # fmt: skip
        return write_envelope(path, engine="nlp", model=PREDICTOR_MODEL, config=config,
                              state_dict=dict(self.params), extra={
            "feature_norm": torch.from_numpy(self.feature_norm),
            "latency_norm": self.latency_norm, "metrics": dict(self.metrics),
            "reference_ms": self.reference_ms,
            "split": {k: torch.from_numpy(v) for k, v in self.split.items()},
        })  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> LatencyPredictor:
        """Read a predictor written by ``save`` (also the pre-envelope files).

        Raises:
            FileNotFoundError: no file. ValueError: not a latency predictor (another engine's
                or another nlp file: named) / corrupt.
        """
        path = Path(path)
        data = read_checkpoint_file(path, "latency predictor", "fit one with "
                                    "LatencyPredictor.fit(...) and .save(path)")  # fmt: skip
        if is_envelope(data):
            envelope = open_envelope(data, path, "nlp", PREDICTOR_MODEL)
            data = {**envelope.config, **envelope.extra, "params": envelope.state_dict}
        elif not isinstance(data, dict) or data.get("format") != _FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path} is not a latency predictor (no edgeinfer envelope; format "
                             f"{got!r}, the earlier one is {_FORMAT!r})")  # fmt: skip
        return cls(
            kind=data["kind"], target=data["target"], profile=LatencyProfile(**data["profile"]),
            head_dim=data["head_dim"], feature_norm=data["feature_norm"].numpy(),
            latency_norm=data["latency_norm"], params=data["params"], metrics=data["metrics"],
            split={k: v.numpy() for k, v in data["split"].items()},
            reference_ms=data.get("reference_ms"),
        )  # fmt: skip
