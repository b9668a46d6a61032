"""--track tensorboard: real event files on disk, and a folder that cannot be written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.cli import app
from tests.helpers.cli import flat
from tests.training.tracking.commands import EPOCHS, runner, train_args
from training.run_folder import RunFolder

pytestmark = pytest.mark.tracking


def test_tensorboard_events_hold_the_scalars_and_histograms(tracked_run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(
        str(RunFolder(tracked_run["run_dir"]).tensorboard),
        size_guidance={"scalars": 0, "histograms": 0},
    ).Reload()
    config = json.loads(RunFolder(tracked_run["run_dir"]).metrics.read_text())
    scalars = set(events.Tags()["scalars"])
    layers = [s["layer"] for s in config["layers"]]
    expected = {"train_loss", "val_acc", "val_auc", "lr", "images_per_second", "test_acc"}
    assert expected | {f"dead_fraction/{layer}" for layer in layers} <= scalars
    losses = events.Scalars("train_loss")
    assert [e.step for e in losses] == list(range(1, EPOCHS + 1))
    assert [e.value for e in losses] == pytest.approx([e["train_loss"] for e in config["epochs"]])
    histograms = set(events.Tags()["histograms"])
    assert {f"activation_input/{layer}" for layer in layers} <= histograms


def test_unusable_tensorboard_folder_fails_before_training(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    target = tmp_path / "file" / "board"
    result = runner.invoke(
        app, train_args(tmp_path / "runs", data_dir, "--track", f"tensorboard={target}")
    )
    assert result.exit_code == 2, result.output
    assert "TensorBoard cannot write" in flat(result.output) and "--track" in flat(result.output)
    assert not (tmp_path / "runs").exists()
