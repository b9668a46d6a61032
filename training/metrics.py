"""Metrics as the official MedMNIST evaluator computes them (``medmnist/evaluator.py``).

- ACC: multiclass argmax accuracy; binary accuracy of P(positive) > 0.5; multilabel mean
  over labels of the per-label accuracy at 0.5.
- AUC: multiclass mean one-vs-rest AUC over classes; binary AUC of P(positive);
  multilabel mean per-label AUC.

So our figures compare directly with the MedMNIST v2 benchmark table. One deviation: a
label or class absent from ``y_true`` has no defined AUC (the official code raises); it is
left out of the mean and reported as NaN in the per-label list.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

from model.card import Task

THRESHOLD = 0.5


def _auc_or_nan(y_true: np.ndarray, y_score: np.ndarray) -> float:
    if len(np.unique(y_true)) < 2:
        return math.nan
    return float(roc_auc_score(y_true, y_score))


def per_label_auc(y_true: np.ndarray, y_score: np.ndarray, task: Task) -> list[float]:
    """One AUC per label (multilabel) or one-vs-rest per class (multiclass, binary)."""
    if task == "multilabel":
        return [_auc_or_nan(y_true[:, i], y_score[:, i]) for i in range(y_score.shape[1])]
    return [
        _auc_or_nan((y_true == i).astype(np.float64), y_score[:, i])
        for i in range(y_score.shape[1])
    ]


def auc(y_true: np.ndarray, y_score: np.ndarray, task: Task) -> float:
    if task == "binary":
        return _auc_or_nan(y_true, y_score[:, -1])
    values = [v for v in per_label_auc(y_true, y_score, task) if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def accuracy(
    y_true: np.ndarray, y_score: np.ndarray, task: Task, threshold: float = THRESHOLD
) -> float:
    if task == "multilabel":
        predicted = y_score > threshold
        return float(
            np.mean([accuracy_score(y_true[:, i], predicted[:, i]) for i in range(y_true.shape[1])])
        )
    if task == "binary":
        return float(accuracy_score(y_true, y_score[:, -1] > threshold))
    return float(accuracy_score(y_true, np.argmax(y_score, axis=-1)))


def evaluate_scores(y_true: np.ndarray, y_score: np.ndarray, task: Task) -> dict[str, float]:
    """``{"acc": ..., "auc": ...}`` from probabilities (softmax or sigmoid outputs)."""
    return {"acc": accuracy(y_true, y_score, task), "auc": auc(y_true, y_score, task)}


def confusion(y_true: np.ndarray, y_score: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class (argmax)."""
    return confusion_matrix(y_true, y_score.argmax(axis=1), labels=list(range(num_classes)))
