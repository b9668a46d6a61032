"""The activation study end to end on a tiny budget: runs, tables, charts and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.cli import app
from training.compare.stats import mean_std
from training.compare.study import SUMMARY_FILES
from training.run_folder import RunFolder

pytestmark = pytest.mark.heavy

TINY = [
    "--data", "imagefolder:folder",
    "--img-size", "16",
    "--width", "4",
    "--depth", "1",
    "--epochs", "2",
    "--workers", "0",
]  # fmt: skip


def test_study_command_with_a_tiny_budget(tmp_path: Path, data_dir: Path) -> None:
    out, report = tmp_path / "study", tmp_path / "report"
    args = ["study", *TINY, "--data-root", str(data_dir), "--activations", "relu,maxout:3"]
    result = CliRunner().invoke(
        app, [*args, "--seeds", "2", "--out", str(out), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "study.json").read_text())
    runs = payload["runs"]
    cells = [(r["regime"], r["run"]["activation"], r["run"]["seed"]) for r in runs]
    assert cells == [
        (regime, activation, seed)
        for regime in ("baseline", "high-lr")
        for activation in ("relu", "maxout:3")
        for seed in (0, 1)
    ]
    for run in runs:  # dead units per layer for every epoch: two conv blocks, two epochs
        assert [len(epoch) for epoch in run["dead_per_epoch"]] == [2, 2]
        assert all(0 <= v <= 1 for epoch in run["dead_per_epoch"] for v in epoch.values())
    params = {r["run"]["activation"]: r["parameters"] for r in runs}
    assert params["maxout:3"] > 2 * params["relu"]  # 3x the conv channels before each max

    # The table holds the JSON's figures: mean ± std over the two seeds.
    table = (out / "study.md").read_text()
    accs = [r["run"]["test_acc"] for r in runs if r["regime"] == "high-lr"][2:]
    mean, std = mean_std(accs)
    assert f"| high-lr | maxout:3 | {params['maxout:3']:,} | {mean:.3f} ± {std:.3f} |" in table
    assert "Dead units per layer after the last epoch, high-lr" in table
    assert table in result.output
    for name in SUMMARY_FILES:
        assert (report / name).read_bytes() == (out / name).read_bytes()
    for chart in report.glob("*.png"):
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    assert not list(report.glob("runs"))
    run_dirs = [Path(r["run"]["run_dir"]) for r in runs]
    assert all(RunFolder(d).best.is_file() for d in run_dirs)


def _error_text(output: str) -> str:
    """The CLI's boxed error as one line (typer wraps it to the terminal width)."""
    return " ".join(output.replace("│", " ").split())


def test_study_rejects_bad_choices_naming_the_flag(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_activation = runner.invoke(app, ["study", "--activations", "relu,swishy"])
    assert bad_activation.exit_code == 2
    assert "--activations" in bad_activation.output
    assert "unknown activation 'swishy'" in _error_text(bad_activation.output)
    bad_regime = runner.invoke(app, ["study", "--regimes", "baseline,cold"])
    assert bad_regime.exit_code == 2 and "--regimes" in bad_regime.output
    assert "unknown regime 'cold'; valid choices: baseline, high-lr" in _error_text(
        bad_regime.output
    )
    bad_data = runner.invoke(app, ["study", "--data", "nope", "--out", str(tmp_path)])
    assert bad_data.exit_code == 2 and "--data" in bad_data.output
