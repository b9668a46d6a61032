"""One training epoch and one evaluation pass, kept lean: the bookkeeping must not cost.

Losses and correct counts accumulate as tensors on the device and are read back (one
device sync) only when the progress bar refreshes and at the end of the epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from model.card import Task
from training.diagnostics import ActivationMonitor
from training.progress import Progress

REFRESH_EVERY = 10  # steps between progress-bar updates (each update syncs the device)


@dataclass(frozen=True)
class EpochStats:
    loss: float
    acc: float
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else math.nan


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but CUDA is not available")
    return torch.device(name)


def make_loss(task: Task, class_weights: torch.Tensor | None, label_smoothing: float) -> nn.Module:
    if task == "multilabel":
        return nn.BCEWithLogitsLoss(pos_weight=class_weights)
    return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)


def probabilities(logits: torch.Tensor, task: Task) -> torch.Tensor:
    return torch.sigmoid(logits) if task == "multilabel" else torch.softmax(logits, dim=1)


class Trainer:
    """Holds what a step needs; ``train_epoch`` runs one pass over a loader."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        loss_fn: nn.Module,
        device: torch.device,
        task: Task,
        *,
        amp: bool = True,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loss_fn = loss_fn
        self.device = device
        self.task = task
        self.amp_dtype: torch.dtype | None = None
        if amp and device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # A gradient scaler is needed for float16 only; bfloat16 has float32's range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def autocast(self) -> torch.autocast | nullcontext[None]:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(
        self, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step; returns the (detached) loss and the logits."""
        images = images.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        with self.autocast():
            logits = self.model(images)
            loss = self.loss_fn(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach(), logits.detach()

    def correct(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.device)
        if self.task == "multilabel":
            return ((logits > 0) == (targets > 0.5)).float().mean(dim=1).sum()
        return (logits.argmax(dim=1) == targets).sum()

    def train_epoch(
        self, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], progress: Progress | None = None
    ) -> EpochStats:
        self.model.train()
        total_loss = torch.zeros((), device=self.device)
        total_correct = torch.zeros((), device=self.device)
        images_seen = 0
        start = time.perf_counter()
        for step, (images, targets) in enumerate(loader, 1):
            loss, logits = self.train_step(images, targets)
            batch = images.shape[0]
            total_loss += loss.float() * batch
            total_correct += self.correct(logits, targets)
            images_seen += batch
            if progress is not None:
                progress.advance()
                if step % REFRESH_EVERY == 0:
                    elapsed = time.perf_counter() - start
                    progress.show(
                        loss=float(total_loss) / images_seen,
                        acc=float(total_correct) / images_seen,
                        ips=images_seen / elapsed,
                    )
        seconds = time.perf_counter() - start
        seen = max(images_seen, 1)
        return EpochStats(
            float(total_loss) / seen, float(total_correct) / seen, images_seen, seconds
        )


@dataclass(frozen=True)
class Predictions:
    scores: np.ndarray  # probabilities, (N, classes)
    targets: np.ndarray
    loss: float


def predict(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device,
    task: Task,
    loss_fn: nn.Module | None = None,
    monitor: ActivationMonitor | None = None,
) -> Predictions:
    """Probabilities for a whole loader, in eval mode, optionally feeding a monitor."""
    model.eval()
    scores, targets = [], []
    total_loss, count = 0.0, 0
    context = monitor.attach() if monitor is not None else nullcontext()
    with torch.inference_mode(), context:
        for images, batch_targets in loader:
            logits = model(images.to(device)).float()
            if loss_fn is not None:
                total_loss += float(loss_fn(logits, batch_targets.to(device))) * len(images)
            count += len(images)
            scores.append(probabilities(logits, task).cpu().numpy())
            targets.append(batch_targets.numpy())
    if not scores:
        raise ValueError("cannot evaluate an empty split")
    return Predictions(
        np.concatenate(scores), np.concatenate(targets), total_loss / count if count else math.nan
    )
