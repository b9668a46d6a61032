"""Activation diagnostics: dead units, sparsity and pre-activation statistics per layer.

A forward pre-hook on every activation module (``model.activations.ACTIVATION_TYPES``)
sees the activation's *input*. Per channel it records whether any input was ever positive;
a channel whose input is never positive over the whole evaluation set is **dead**: a ReLU
there never fires and never passes a gradient. Sparsity is the fraction of inputs <= 0
(outputs that are zero for ReLU, negative or zero for its leaky and smooth cousins).
Pre-hooks see the input before an in-place ReLU overwrites it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn

from model.activations import ACTIVATION_TYPES

log = logging.getLogger(__name__)

DEAD_WARNING_FRACTION = 0.5


@dataclass(frozen=True)
class LayerStats:
    layer: str
    kind: str  # the activation class, e.g. "ReLU"
    channels: int
    dead_fraction: float
    sparsity: float
    preact_mean: float
    preact_std: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


class _Accumulator:
    def __init__(self) -> None:
        self.ever_positive: torch.Tensor | None = None
        self.non_positive = 0
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().float()
        # Channel axis 1 for (N, C, ...) tensors; a 1-D or 2-D (N, F) input has F units.
        per_channel = x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() > 1 else x[None]
        positive = (per_channel > 0).any(dim=1)
        self.ever_positive = (
            positive if self.ever_positive is None else self.ever_positive | positive
        )
        self.non_positive += int((per_channel <= 0).sum())
        self.count += per_channel.numel()
        self.total += float(per_channel.sum(dtype=torch.float64))
        self.total_sq += float((per_channel.double() ** 2).sum())

    def stats(self, layer: str, kind: str) -> LayerStats:
        if self.ever_positive is None or self.count == 0:
            return LayerStats(layer, kind, 0, math.nan, math.nan, math.nan, math.nan)
        mean = self.total / self.count
        variance = max(self.total_sq / self.count - mean * mean, 0.0)
        channels = self.ever_positive.numel()
        dead = channels - int(self.ever_positive.sum())
        return LayerStats(
            layer,
            kind,
            channels,
            dead / channels,
            self.non_positive / self.count,
            mean,
            math.sqrt(variance),
        )


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if name and isinstance(module, ACTIVATION_TYPES)
    ]


class ActivationMonitor:
    """Collects per-layer statistics while attached; ``attach()`` is a context manager."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = activation_layers(model)
        self.accumulators = {name: _Accumulator() for name, _ in self.layers}

    @contextmanager
    def attach(self) -> Iterator[ActivationMonitor]:
        handles = []
        for name, module in self.layers:
            accumulator = self.accumulators[name]

            def hook(
                _m: nn.Module, args: tuple[torch.Tensor, ...], acc: _Accumulator = accumulator
            ) -> None:
                acc.update(args[0])

            handles.append(module.register_forward_pre_hook(hook))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def results(self) -> list[LayerStats]:
        return [
            self.accumulators[name].stats(name, type(module).__name__)
            for name, module in self.layers
        ]


def summarize(stats: list[LayerStats]) -> dict[str, float]:
    """Mean dead fraction and sparsity over layers, weighted by channel count."""
    measured = [s for s in stats if s.channels]
    channels = sum(s.channels for s in measured)
    if not channels:
        return {"dead_fraction": math.nan, "sparsity": math.nan}
    return {
        "dead_fraction": sum(s.dead_fraction * s.channels for s in measured) / channels,
        "sparsity": sum(s.sparsity * s.channels for s in measured) / channels,
    }


def warn_dead_layers(
    stats: list[LayerStats], threshold: float = DEAD_WARNING_FRACTION, context: str = ""
) -> list[str]:
    """Log a warning for each layer whose dead fraction exceeds ``threshold``."""
    flagged = [s for s in stats if s.channels and s.dead_fraction > threshold]
    for s in flagged:
        log.warning(
            "%s%s: %.0f%% of %d channels are dead (input never positive on the evaluation set)",
            f"{context}: " if context else "",
            s.layer,
            100 * s.dead_fraction,
            s.channels,
        )
    return [s.layer for s in flagged]
