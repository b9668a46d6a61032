from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.card import read_card
from model.cli import app
from training.config import TrainConfig
from training.sweep import SweepRow, aggregate, render_table


def row(activation: str, seed: int, acc: float) -> SweepRow:
    return SweepRow(activation, seed, acc, 0.9, 0.1, 0.5, 10.0 + seed, 1.0, "run", "model")


def test_mean_and_sample_std_over_seeds() -> None:
    table = aggregate([row("relu", 0, 0.8), row("relu", 1, 0.9), row("elu", 0, 0.7)])
    mean, std = table["relu"]["test_acc"]
    assert mean == pytest.approx(0.85) and std == pytest.approx(0.0707107, rel=1e-5)
    assert table["elu"]["test_acc"] == (0.7, 0.0)
    text = render_table(TrainConfig(), [row("relu", 0, 0.8), row("relu", 1, 0.9)])
    assert "| relu | 0.8500 ± 0.0707 |" in text


def test_sweep_command_with_a_tiny_budget(tmp_path: Path, data_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "sweep",
            "--activations", "relu,prelu",
            "--seeds", "2",
            "--data", "imagefolder:folder",
            "--data-root", str(data_dir),
            "--arch-option", "width=4",
            "--arch-option", "depth=1",
            "--img-size", "16",
            "--epochs", "1",
            "--batch-size", "8",
            "--workers", "0",
            "--no-progress",
            "--out", str(tmp_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.glob("sweep-*")
    table = (folder / "sweep.md").read_text()
    assert "| relu |" in table and "| prelu |" in table and "±" in table
    assert (folder / "sweep.png").stat().st_size > 1000
    models = sorted(folder.glob("models/*/1/model.onnx"))
    assert [m.parts[-3] for m in models] == ["prelu-s0", "prelu-s1", "relu-s0", "relu-s1"]
    assert read_card(models[0]).activation.startswith("prelu")


def test_sweep_rejects_an_unknown_activation(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["sweep", "--activations", "relu,swishy", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--activations" in result.output
