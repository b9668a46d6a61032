"""The charts: the sweep's outcomes per activation (``sweep.png``), and the study's dead
units per epoch and per layer and outcomes per activation.

Each study chart takes the study's cells, ``(regime, activation) -> runs over seeds``, and
draws means with the spread over seeds (a band or error bars: one standard deviation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from training.compare.records import Cells, StudyRow, SweepRow
from training.compare.stats import aggregate
from training.plots import plt, save_figure


def _regimes(cells: Cells) -> list[str]:
    return list(dict.fromkeys(regime for regime, _ in cells))


def _activations(cells: Cells) -> list[str]:
    return list(dict.fromkeys(activation for _, activation in cells))


def _spread(values: np.ndarray) -> np.ndarray:
    return values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1:])


def mean_dead_per_epoch(rows: Sequence[StudyRow]) -> tuple[np.ndarray, np.ndarray]:
    """Per epoch: mean over seeds (and std) of the dead fraction averaged over layers."""
    curves = np.array([[np.mean(list(e.values())) for e in r.dead_per_epoch] for r in rows])
    return curves.mean(axis=0), _spread(curves)


def dead_per_epoch_plot(cells: Cells, titles: dict[str, str], path: Path) -> Path:
    regimes = _regimes(cells)
    fig, axes = plt.subplots(1, len(regimes), figsize=(5.5 * len(regimes), 4), squeeze=False)
    for axis, regime in zip(axes[0], regimes, strict=True):
        for activation in _activations(cells):
            rows = cells.get((regime, activation))
            if not rows:
                continue
            mean, std = mean_dead_per_epoch(rows)
            epochs = np.arange(1, len(mean) + 1)
            axis.plot(epochs, 100 * mean, "o-", label=activation)
            axis.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), alpha=0.15)
        axis.set(xlabel="epoch", ylabel="dead units, mean over layers (%)", title=titles[regime])
        axis.set_xticks(epochs)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return save_figure(fig, path)


def dead_per_layer_plot(cells: Cells, titles: dict[str, str], path: Path) -> Path:
    regimes, activations = _regimes(cells), _activations(cells)
    fig, axes = plt.subplots(len(regimes), 1, figsize=(9, 3.6 * len(regimes)), squeeze=False)
    width = 0.8 / len(activations)
    for axis, regime in zip(axes[:, 0], regimes, strict=True):
        layers: list[str] = []
        for i, activation in enumerate(activations):
            rows = cells.get((regime, activation))
            if not rows:
                continue
            final = np.array([list(r.dead_per_epoch[-1].values()) for r in rows])
            layers = layers or [str(n + 1) for n in range(final.shape[1])]
            x = np.arange(final.shape[1]) + (i - (len(activations) - 1) / 2) * width
            axis.bar(
                x, 100 * final.mean(0), width, yerr=100 * _spread(final), capsize=2,
                label=activation,
            )  # fmt: skip
        axis.set_xticks(range(len(layers)), [f"layer {n}" for n in layers])
        axis.set(ylabel="dead units after last epoch (%)", title=titles[regime])
        axis.set_ylim(bottom=0)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8, ncols=len(activations))
    return save_figure(fig, path)


def outcomes_plot(cells: Cells, path: Path) -> Path:
    regimes, activations = _regimes(cells), _activations(cells)
    panels: tuple[tuple[str, Callable[[StudyRow], float]], ...] = (
        ("test accuracy", lambda r: r.run.test_acc),
        ("sparsity: outputs <= 0 (%)", lambda r: 100 * r.run.sparsity),
        ("ONNX latency, batch 1 (ms)", lambda r: r.run.latency_ms),
        ("parameters (thousands)", lambda r: r.parameters / 1000),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    width = 0.8 / len(regimes)
    for axis, (title, value) in zip(axes, panels, strict=True):
        for i, regime in enumerate(regimes):
            means, stds = [], []
            for activation in activations:
                values = np.array([value(r) for r in cells.get((regime, activation), [])])
                means.append(values.mean() if len(values) else np.nan)
                stds.append(values.std(ddof=1) if len(values) > 1 else 0.0)
            x = np.arange(len(activations)) + (i - (len(regimes) - 1) / 2) * width
            axis.bar(x, np.nan_to_num(means), width, yerr=stds, capsize=2, label=regime)
        axis.set_xticks(range(len(activations)), activations, rotation=30, ha="right")
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    return save_figure(fig, path)


def sweep_plot(rows: list[SweepRow], path: Path) -> Path:
    table = aggregate(rows)
    names = list(table)
    x = np.arange(len(names))
    panels = (
        ("test_acc", "test ACC", 1.0),
        ("dead_fraction", "dead units (%)", 100.0),
        ("train_seconds", "training time (s)", 1.0),
        ("latency_ms", "ONNX latency (ms)", 1.0),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    for axis, (metric, title, scale) in zip(axes, panels, strict=True):
        means = [table[n][metric][0] * scale for n in names]
        stds = [table[n][metric][1] * scale for n in names]
        axis.bar(x, np.nan_to_num(means), yerr=np.nan_to_num(stds), capsize=3, color="tab:blue")
        axis.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
        if metric == "test_acc":
            finite = [m for m in means if not math.isnan(m)]
            low = min(finite, default=0.0)
            axis.set_ylim(max(0.0, low - 0.05), 1.0)
    return save_figure(fig, path)
