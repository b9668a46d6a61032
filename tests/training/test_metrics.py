"""Metric functions against values worked out by hand (MedMNIST evaluator definitions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import accuracy, auc, confusion, evaluate_scores, per_label_auc


def test_multiclass_acc_and_mean_one_vs_rest_auc() -> None:
    y_true = np.array([0, 1, 2, 2])
    scores = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.1, 0.3, 0.6], [0.5, 0.2, 0.3]])
    assert accuracy(y_true, scores, "multiclass") == pytest.approx(0.75)
    # class 0: 3/3 pairs ordered; class 1: 3/3; class 2: 3 of 4 pairs plus one tie (0.5).
    assert auc(y_true, scores, "multiclass") == pytest.approx((1 + 1 + 3.5 / 4) / 3)


def test_binary_uses_the_positive_class_probability() -> None:
    y_true = np.array([0, 0, 1, 1])
    positive = np.array([0.1, 0.6, 0.4, 0.8])
    scores = np.stack([1 - positive, positive], axis=1)
    assert auc(y_true, scores, "binary") == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert accuracy(y_true, scores, "binary") == pytest.approx(0.5)  # P(pos) > 0.5


def test_multilabel_mean_per_label_auc_and_acc_at_half() -> None:
    y_true = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.3, 0.7], [0.6, 0.1], [0.2, 0.3]])
    assert per_label_auc(y_true, scores, "multilabel") == pytest.approx([1.0, 0.5])
    assert auc(y_true, scores, "multilabel") == pytest.approx(0.75)
    assert accuracy(y_true, scores, "multilabel") == pytest.approx((1.0 + 0.75) / 2)


def test_label_without_positives_is_left_out_of_the_mean() -> None:
    y_true = np.array([[1, 0], [0, 0], [1, 0]])
    scores = np.array([[0.9, 0.2], [0.1, 0.7], [0.8, 0.1]])
    aucs = per_label_auc(y_true, scores, "multilabel")
    assert aucs[0] == 1.0 and math.isnan(aucs[1])
    assert evaluate_scores(y_true, scores, "multilabel")["auc"] == 1.0


def test_confusion_rows_are_true_classes() -> None:
    y_true = np.array([0, 1, 1])
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    np.testing.assert_array_equal(confusion(y_true, scores, 2), [[1, 0], [1, 1]])
