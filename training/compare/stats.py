"""Means and spreads over seeds, as the sweep's and the study's tables state them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from training.compare.records import StudyRow, SweepRow

SWEEP_METRICS = ("test_acc", "test_auc", "dead_fraction", "sparsity", "train_seconds", "latency_ms")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation, ignoring NaN; (nan, nan) when nothing is left."""
    array = np.asarray(values, dtype=float)
    if not len(array) or np.isnan(array).all():
        return math.nan, math.nan
    std = float(np.nanstd(array, ddof=1)) if np.count_nonzero(~np.isnan(array)) > 1 else 0.0
    return float(np.nanmean(array)), std


def plus_minus(value: tuple[float, float], scale: float, digits: int) -> str:
    """``mean ± std``, scaled; ``n/a`` for an undefined mean."""
    mean, std = value
    if math.isnan(mean):
        return "n/a"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def aggregate(rows: list[SweepRow]) -> dict[str, dict[str, tuple[float, float]]]:
    """activation -> metric -> (mean, std over seeds)."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for activation in dict.fromkeys(r.activation for r in rows):
        group = [r for r in rows if r.activation == activation]
        table[activation] = {m: mean_std([getattr(r, m) for r in group]) for m in SWEEP_METRICS}
    return table


def dead_per_layer(rows: Sequence[StudyRow]) -> dict[str, tuple[float, float]]:
    """Layer -> mean and std over seeds of its dead fraction after the last epoch."""
    return {
        layer: mean_std([row.dead_per_epoch[-1][layer] for row in rows])
        for layer in rows[0].dead_per_epoch[-1]
    }
