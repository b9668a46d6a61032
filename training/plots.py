"""PNG plots of a run: learning curves, confusion matrix or per-label AUC, dead units."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np

from training.diagnostics import LayerStats


def save_figure(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(history: Sequence[dict[str, Any]], path: Path) -> Path:
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    left.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    left.set(xlabel="epoch", ylabel="loss", title="Loss")
    right.plot(epochs, [h["train_acc"] for h in history], "o-", label="train ACC")
    right.plot(epochs, [h["val_acc"] for h in history], "o-", label="val ACC")
    right.plot(epochs, [h["val_auc"] for h in history], "o-", label="val AUC")
    right.set(xlabel="epoch", ylabel="metric", title="Metrics")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    return save_figure(fig, path)


def confusion_matrix_plot(matrix: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=axis, fraction=0.046)
    ticks = range(len(labels))
    axis.set_xticks(ticks, labels, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(ticks, labels, fontsize=8)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test)")
    if len(labels) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, col), value in np.ndenumerate(matrix):
            color = "white" if value > threshold else "black"
            axis.text(col, row, str(value), ha="center", va="center", fontsize=7, color=color)
    return save_figure(fig, path)


def label_auc_plot(aucs: Sequence[float], labels: Sequence[str], path: Path) -> Path:
    fig, axis = plt.subplots(figsize=(max(6.0, 0.5 * len(labels) + 2), 4))
    axis.bar(range(len(labels)), np.nan_to_num(aucs, nan=0.0), color="tab:blue")
    axis.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    axis.set(ylim=(0, 1), ylabel="AUC", title="Per-label AUC (test)")
    axis.legend()
    return save_figure(fig, path)


def dead_units_plot(
    history: Sequence[dict[str, Any]],
    final: Sequence[LayerStats],
    path: Path,
    threshold: float,
) -> Path:
    """Left: dead fraction per layer over the epochs. Right: final dead fraction and
    sparsity per layer on the test set."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    layers = list(history[-1]["dead_per_layer"]) if history else [s.layer for s in final]
    epochs = [h["epoch"] for h in history]
    for layer in layers:
        left.plot(
            epochs, [100 * h["dead_per_layer"].get(layer, np.nan) for h in history], label=layer
        )
    left.axhline(100 * threshold, color="red", linestyle="--", linewidth=1, label="warning")
    left.set(xlabel="epoch", ylabel="dead units (%)", title="Dead units per layer (validation)")
    left.set_ylim(-2, 102)
    if len(layers) <= 12:
        left.legend(fontsize=7)
    if final:
        x = np.arange(len(final))
        right.bar(x - 0.2, [100 * s.dead_fraction for s in final], 0.4, label="dead units")
        right.bar(x + 0.2, [100 * s.sparsity for s in final], 0.4, label="sparsity")
        right.set_xticks(x, [s.layer for s in final], rotation=60, ha="right", fontsize=7)
        right.set(ylabel="%", title="Per layer at the end (test)", ylim=(0, 100))
        right.legend()
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return save_figure(fig, path)
