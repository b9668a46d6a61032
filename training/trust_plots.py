"""Trust plots: a reliability diagram (before and after temperature scaling) and the
OOD score's histograms, in distribution against each out-of-distribution set."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from model.trust import ECE_BINS, expected_calibration_error, reliability_bins, softmax
from training.plots import plt, save_figure


def reliability_diagram(
    probabilities: Mapping[str, np.ndarray], labels: np.ndarray, path: Path, title: str = ""
) -> Path:
    """Accuracy against confidence per bin, one set of bars per named set of probabilities."""
    fig, axis = plt.subplots(figsize=(5, 5))
    centres = (np.arange(ECE_BINS) + 0.5) / ECE_BINS
    colours = ("tab:red", "tab:blue", "tab:green")
    for (name, p), colour in zip(probabilities.items(), colours, strict=False):
        _, accuracy, counts = reliability_bins(p, labels)
        shown = counts > 0
        ece = expected_calibration_error(p, labels)
        axis.bar(
            centres[shown], accuracy[shown], 1.0 / ECE_BINS, alpha=0.45, color=colour,
            label=f"{name} (ECE {ece:.3f})",
        )  # fmt: skip
    axis.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    axis.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    axis.set_title(title or f"Reliability ({ECE_BINS} bins)")
    axis.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


def temperature_reliability(
    logits: np.ndarray, labels: np.ndarray, temperature: float, path: Path
) -> Path:
    """Raw softmax against softmax(logits / T)."""
    return reliability_diagram(
        {"raw softmax": softmax(logits), f"T = {temperature:.2f}": softmax(logits, temperature)},
        labels,
        path,
    )


def score_histograms(
    scorer: str, inside: np.ndarray, outside: Mapping[str, np.ndarray], path: Path
) -> Path:
    fig, axis = plt.subplots(figsize=(7, 4))
    everything = np.concatenate([inside, *outside.values()])
    low, high = np.quantile(everything, [0.001, 0.995])
    bins = np.linspace(low, high, 50).tolist()
    axis.hist(np.clip(inside, low, high), bins, alpha=0.6, density=True, label="in distribution")
    for name, scores in outside.items():
        axis.hist(np.clip(scores, low, high), bins, alpha=0.45, density=True, label=name)
    axis.set(xlabel=f"{scorer} score (higher = less like the training data)", ylabel="density")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return save_figure(fig, path)
