from __future__ import annotations

import numpy as np
import pytest
import torch

from training.optim import class_weights, warmup_cosine


def test_warmup_then_cosine_to_zero() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_cosine(optimizer, total_steps=10, warmup_steps=2)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(1 / 3) and rates[1] == pytest.approx(2 / 3)
    assert rates[2] == pytest.approx(1.0)
    assert rates[2:] == sorted(rates[2:], reverse=True)
    assert rates[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 7 / 8)))


def test_inverse_frequency_and_pos_weight() -> None:
    weights = class_weights(np.array([0, 0, 0, 1]), 2, "multiclass")
    assert weights.tolist() == pytest.approx([4 / 6, 4 / 2])
    pos = class_weights(np.array([[1, 0], [0, 0], [1, 1], [0, 0]], np.float32), 2, "multilabel")
    assert pos.tolist() == pytest.approx([1.0, 3.0])
