"""Predicted-vs-measured latency plot of fitted predictors on their held-out rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .latency import LatencyDataset

__all__ = ["plot_predictions"]


def plot_predictions(predictors: Sequence, dataset: LatencyDataset, path: str | Path) -> Path:
    """Scatter of predicted against measured latency on each predictor's test rows (one
    colour per predictor, MAPE in the legend, the identity line dashed); writes a PNG.

    Raises:
        ValueError: no predictor.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not predictors:
        raise ValueError("plot_predictions needs at least one fitted LatencyPredictor")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for predictor in predictors:
        rows = predictor.split["test"]
        measured = np.asarray(dataset.values(predictor.target))[rows]
        predicted = predictor.predict_many([dataset.configs[i] for i in rows])
        label = (f"{predictor.kind}: MAPE {predictor.metrics['mape']:.1f}%, "
                 f"RMSE {predictor.metrics['rmse']:.2f} ms")  # fmt: skip
        axes.scatter(measured, predicted, s=10, alpha=0.7, label=label)
        top = max(top, float(measured.max()), float(predicted.max()))
    axes.plot([0, top * 1.05], [0, top * 1.05], "k--", linewidth=1, label="predicted = measured")
    axes.set_xlabel(f"measured {predictors[0].target.replace('_', ' ')}")
    axes.set_ylabel("predicted (ms)")
    axes.set_title(f"held-out sub-networks\n{predictors[0].profile.describe()}", fontsize=8)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
