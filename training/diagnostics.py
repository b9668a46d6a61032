"""Activation diagnostics: dead units, sparsity and pre-activation statistics per layer.

A forward pre-hook on every activation module (``model.activations.ACTIVATION_TYPES``)
sees the activation's *input*. Per channel it records whether any input was ever positive;
a channel whose input is never positive over the whole evaluation set is **dead**: a ReLU
there never fires and never passes a gradient. Sparsity is the fraction of inputs <= 0
(outputs that are zero for ReLU, negative or zero for its leaky and smooth cousins).
Pre-hooks see the input before an in-place ReLU overwrites it.

Maxout (``model.activations.Maxout``) is counted in its own terms: its input holds k pieces
per output channel and its output is their maximum, so a unit cannot be "never positive"
in the ReLU sense, but a **piece that never wins** (is never the maximum) passes no gradient
and might as well not exist: that is the Maxout analogue of a dead ReLU. For a Maxout layer
``units`` is ``"pieces"``, ``channels`` counts the pieces and ``dead_fraction`` is the
fraction that never won; sparsity is the fraction of outputs <= 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from model.activations import ACTIVATION_TYPES, Maxout

log = logging.getLogger(__name__)

DEAD_WARNING_FRACTION = 0.5
VALUES_PER_BATCH = 1024  # kept per layer and batch when a histogram is wanted
MONITORED_TYPES: tuple[type[nn.Module], ...] = (*ACTIVATION_TYPES, Maxout)
DEAD_MEANING = {
    "channels": "channels are dead (input never positive on the evaluation set)",
    "pieces": "Maxout pieces never win (never the maximum on the evaluation set)",
}


@dataclass(frozen=True)
class LayerStats:
    layer: str
    kind: str  # the activation class, e.g. "ReLU"
    channels: int
    dead_fraction: float
    sparsity: float
    preact_mean: float
    preact_std: float
    units: str = "channels"  # what ``channels`` and ``dead_fraction`` count: or "pieces"

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _per_channel(x: torch.Tensor) -> torch.Tensor:
    """``(C, everything else)``: channel axis 1 for (N, C, ...); a 1-D input is one unit."""
    return x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() > 1 else x[None]


class _Accumulator:
    """Element-wise activations: a unit is alive once its input was ever positive."""

    units = "channels"

    def __init__(self) -> None:
        self.alive: torch.Tensor | None = None  # per unit: ever positive (ever won, Maxout)
        self.non_positive = 0
        self.outputs = 0
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0

    def update(self, x: torch.Tensor) -> None:
        per_channel = _per_channel(x.detach().float())
        self._record_preactivation(per_channel)
        self._record_alive((per_channel > 0).any(dim=1))
        self._record_output(per_channel)

    def _record_preactivation(self, values: torch.Tensor) -> None:
        self.count += values.numel()
        self.total += float(values.sum(dtype=torch.float64))
        self.total_sq += float((values.double() ** 2).sum())

    def _record_alive(self, alive: torch.Tensor) -> None:
        self.alive = alive if self.alive is None else self.alive | alive

    def _record_output(self, values: torch.Tensor) -> None:
        self.non_positive += int((values <= 0).sum())
        self.outputs += values.numel()

    def merge(self, other: _Accumulator) -> None:
        """Add another accumulator's counts (another rank's share of the same split)."""
        if other.alive is not None:
            theirs = other.alive.cpu()
            self.alive = theirs if self.alive is None else self.alive.cpu() | theirs
        self.non_positive += other.non_positive
        self.outputs += other.outputs
        self.count += other.count
        self.total += other.total
        self.total_sq += other.total_sq

    def stats(self, layer: str, kind: str) -> LayerStats:
        if self.alive is None or self.count == 0:
            return LayerStats(layer, kind, 0, math.nan, math.nan, math.nan, math.nan, self.units)
        mean = self.total / self.count
        variance = max(self.total_sq / self.count - mean * mean, 0.0)
        units = self.alive.numel()
        dead = units - int(self.alive.sum())
        return LayerStats(
            layer,
            kind,
            units,
            dead / units,
            self.non_positive / self.outputs,
            mean,
            math.sqrt(variance),
            self.units,
        )


class _MaxoutAccumulator(_Accumulator):
    """Maxout: a piece is alive once it was the maximum of its group somewhere."""

    units = "pieces"

    def __init__(self, maxout: Maxout) -> None:
        super().__init__()
        self.maxout = maxout

    def update(self, x: torch.Tensor) -> None:
        grouped = self.maxout.grouped(x.detach().float())  # (N, C, k, ...)
        self._record_preactivation(grouped)
        winners = grouped.argmax(dim=2)  # (N, C, ...)
        won = torch.stack([winners == j for j in range(self.maxout.pieces)], dim=2)
        self._record_alive(_per_channel(won.flatten(1, 2)).any(dim=1))  # one per piece
        self._record_output(grouped.amax(dim=2))


class _ValueSample:
    """Up to ``limit`` input values of one layer, a strided sample of every batch so the
    first batches do not fill the budget (for histograms)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[torch.Tensor] = []
        self.count = 0

    def add(self, x: torch.Tensor) -> None:
        room = self.limit - self.count
        if room <= 0:
            return
        flat = x.detach().float().reshape(-1)
        part = flat[:: max(1, flat.numel() // VALUES_PER_BATCH)][:room].cpu()
        self.parts.append(part)
        self.count += part.numel()

    def values(self) -> np.ndarray:
        return torch.cat(self.parts).numpy() if self.parts else np.empty(0, np.float32)


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if name and isinstance(module, MONITORED_TYPES)
    ]


def _accumulator_for(module: nn.Module) -> _Accumulator:
    return _MaxoutAccumulator(module) if isinstance(module, Maxout) else _Accumulator()


class ActivationMonitor:
    """Collects per-layer statistics while attached; ``attach()`` is a context manager.

    With ``keep_values`` > 0 it also keeps a sample of up to that many input values per
    layer (``values()``), for histograms.
    """

    def __init__(self, model: nn.Module, *, keep_values: int = 0) -> None:
        self.layers = activation_layers(model)
        self.accumulators = {name: _accumulator_for(module) for name, module in self.layers}
        self.samples = {name: _ValueSample(keep_values) for name, _ in self.layers}

    @contextmanager
    def attach(self) -> Iterator[ActivationMonitor]:
        handles = []
        for name, module in self.layers:
            accumulator, sample = self.accumulators[name], self.samples[name]

            def hook(
                _m: nn.Module,
                args: tuple[torch.Tensor, ...],
                acc: _Accumulator = accumulator,
                kept: _ValueSample = sample,
            ) -> None:
                acc.update(args[0])
                kept.add(args[0])

            handles.append(module.register_forward_pre_hook(hook))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def snapshot(self) -> dict[str, _Accumulator]:
        """The counts so far, as plain picklable accumulators on the CPU (to send to other
        processes; they hold no module)."""
        copies = {}
        for name, accumulator in self.accumulators.items():
            copy = _Accumulator()
            copy.merge(accumulator)
            copies[name] = copy
        return copies

    def merge(self, snapshots: list[dict[str, _Accumulator]]) -> None:
        """Replace the counts by the sum of ``snapshots`` (every rank's, this one's included)."""
        self.accumulators = {name: _accumulator_for(module) for name, module in self.layers}
        for snapshot in snapshots:
            for name, accumulator in snapshot.items():
                self.accumulators[name].merge(accumulator)

    def results(self) -> list[LayerStats]:
        return [
            self.accumulators[name].stats(name, type(module).__name__)
            for name, module in self.layers
        ]

    def values(self) -> dict[str, np.ndarray]:
        """The kept input values of each layer (empty unless ``keep_values`` was set)."""
        return {name: sample.values() for name, sample in self.samples.items()}


def summarize(stats: list[LayerStats]) -> dict[str, float]:
    """Mean dead fraction and sparsity over layers, weighted by unit count (channels, or
    pieces for Maxout)."""
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
            "%s%s: %.0f%% of %d %s",
            f"{context}: " if context else "",
            s.layer,
            100 * s.dead_fraction,
            s.channels,
            DEAD_MEANING[s.units],
        )
    return [s.layer for s in flagged]
