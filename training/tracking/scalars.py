"""The numbers a tracker logs: the options as params, an epoch's scalars, the test figures."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.diagnostics import LayerStats


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested options (``arch_options``) become ``arch_options.width``; values strings."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def epoch_scalars(record: Mapping[str, Any], layers: list[LayerStats]) -> dict[str, float]:
    """The numbers of one epoch record plus dead fraction and sparsity per layer.

    Undefined values (an AUC on a one-class split) are left out rather than logged as NaN,
    which breaks the trackers' charts.
    """
    scalars = {k: float(v) for k, v in record.items() if k != "epoch" and _finite(v)}
    scalars.update(layer_scalars(layers))
    return scalars


def layer_scalars(layers: list[LayerStats], prefix: str = "") -> dict[str, float]:
    scalars = {}
    for stats in layers:
        for metric in ("dead_fraction", "sparsity"):
            value = getattr(stats, metric)
            if _finite(value):
                scalars[f"{prefix}{metric}/{stats.layer}"] = float(value)
    return scalars


def final_scalars(test: Mapping[str, float], layers: list[LayerStats]) -> dict[str, float]:
    scalars = {f"test_{k}": float(v) for k, v in test.items() if _finite(v)}
    scalars.update(layer_scalars(layers, "test_"))
    return scalars
