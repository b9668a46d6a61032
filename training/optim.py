"""Optimiser, learning-rate schedule (linear warm-up then cosine) and loss weights."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from model.card import Task
from training.config import TrainConfig


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases, norm parameters and PReLU slopes (all 1-D): decaying a
    # PReLU slope towards 0 would quietly turn it back into a ReLU.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up to the base rate, then cosine decay to zero."""
    total_steps = max(total_steps, 1)
    warmup_steps = min(max(warmup_steps, 0), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def class_weights(targets: np.ndarray, num_classes: int, task: Task) -> torch.Tensor:
    """Inverse-frequency weights (``total / (classes * count)``); for multilabel, the
    ``pos_weight`` of each label (negatives / positives)."""
    if task == "multilabel":
        positives = targets.sum(axis=0).astype(np.float64)
        negatives = len(targets) - positives
        return torch.as_tensor(negatives / np.maximum(positives, 1), dtype=torch.float32)
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    weights = len(targets) / (num_classes * np.maximum(counts, 1))
    return torch.as_tensor(weights, dtype=torch.float32)
