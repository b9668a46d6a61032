"""Means and sample standard deviations over seeds, and the tables that state them."""

from __future__ import annotations

import math

import pytest

from training.compare.records import SweepRow
from training.compare.stats import aggregate, mean_std, plus_minus
from training.compare.tables import render_sweep_table
from training.config import TrainConfig


def row(activation: str, seed: int, acc: float) -> SweepRow:
    return SweepRow(activation, seed, acc, 0.9, 0.1, 0.5, 10.0 + seed, 1.0, "run", "model")


def test_mean_and_sample_std_over_seeds() -> None:
    table = aggregate([row("relu", 0, 0.8), row("relu", 1, 0.9), row("elu", 0, 0.7)])
    mean, std = table["relu"]["test_acc"]
    assert mean == pytest.approx(0.85) and std == pytest.approx(0.0707107, rel=1e-5)
    assert table["elu"]["test_acc"] == (0.7, 0.0)
    text = render_sweep_table(TrainConfig(), [row("relu", 0, 0.8), row("relu", 1, 0.9)])
    assert "| relu | 0.8500 ± 0.0707 |" in text


def test_undefined_values_are_left_out_and_an_empty_mean_is_not_available() -> None:
    assert mean_std([0.5, math.nan, 0.7]) == pytest.approx((0.6, 0.1414214))
    assert all(math.isnan(v) for v in mean_std([math.nan]))
    assert plus_minus(mean_std([]), 100, 1) == "n/a"
    assert plus_minus((0.25, 0.05), 100, 1) == "25.0 ± 5.0"
