"""What the trackers log: flattened params, and only finite scalars."""

from __future__ import annotations

import math

from training.diagnostics import LayerStats
from training.tracking.scalars import epoch_scalars, final_scalars, flatten_params


def test_nested_options_become_dotted_params() -> None:
    params = flatten_params({"lr": 0.1, "arch_options": {"width": 8}})
    assert params == {"lr": "0.1", "arch_options.width": "8"}


def test_undefined_values_are_left_out_and_layers_get_their_own_scalars() -> None:
    layers = [LayerStats("conv1", "ReLU", 4, 0.25, 0.5, 0.0, 1.0)]
    record = {"epoch": 1, "val_auc": math.nan, "val_acc": 0.75, "best": True}
    assert epoch_scalars(record, layers) == {
        "val_acc": 0.75,
        "dead_fraction/conv1": 0.25,
        "sparsity/conv1": 0.5,
    }
    assert final_scalars({"acc": 0.5, "auc": math.nan}, layers) == {
        "test_acc": 0.5,
        "test_dead_fraction/conv1": 0.25,
        "test_sparsity/conv1": 0.5,
    }
