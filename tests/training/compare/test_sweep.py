"""``rectifier sweep`` end to end on a tiny budget: runs, exported models, table and chart."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.card import read_card
from model.cli import app

pytestmark = pytest.mark.heavy


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
