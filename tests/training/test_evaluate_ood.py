"""``rectifier export`` fitting trust from a run, and ``rectifier evaluate-ood``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.card import read_card
from model.cli import app
from model.trust import SCORERS
from tests.helpers.cli import flat
from tests.helpers.datasets import TINY
from training.run_folder import RunFolder

runner = CliRunner()
pytestmark = pytest.mark.heavy  # trains a (tiny) run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("ood-runs")
    args = ["train", "--data", "medmnist:pneumoniamnist", "--data-root", str(data_dir / "medmnist")]
    result = runner.invoke(app, [*args, "--out", str(out), "--name", "r", "--epochs", "1", *TINY])
    assert result.exit_code == 0, result.output
    assert RunFolder(out / "r").plot("reliability").is_file()  # the training report's
    return out / "r"


def test_export_of_a_run_fits_trust_and_no_trust_skips_it(run: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    result = runner.invoke(app, ["export", str(run), "--out", str(models), "--name", "m"])
    assert result.exit_code == 0, result.output
    assert "calibrated on" in result.output and "T =" in result.output
    card = read_card(models / "m" / "1" / "model.onnx")
    assert card.trust is not None and card.trust.ood is not None
    assert card.trust.dataset == "medmnist:pneumoniamnist"
    assert (models / "m" / "1" / "ood_stats.npz").is_file()

    result = runner.invoke(
        app, ["export", str(run), "--out", str(models), "--name", "m", "--no-trust"]
    )
    assert result.exit_code == 0, result.output
    assert read_card(models / "m" / "2" / "model.onnx").trust is None
    assert not (models / "m" / "2" / "ood_stats.npz").exists()


def test_evaluate_ood_on_a_run_writes_its_report(run: Path, data_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "evaluate-ood", str(run), "--ood", "noise:30", "--ood", "medmnist:dermamnist",
            "--data-root", str(data_dir / "medmnist"), "--limit", "40",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = RunFolder(run)
    figures = json.loads(folder.ood_metrics.read_text())
    assert set(figures["sets"]) == {"noise:30", "medmnist:dermamnist"}
    for entry in figures["sets"].values():
        assert set(entry["scores"]) == set(SCORERS)
        for f in entry["scores"].values():
            assert 0 <= f["auroc"] <= 1 and 0 <= f["fpr95"] <= 1 and 0 <= f["aupr"] <= 1
    assert {"before", "after"} == set(figures["calibration"])
    assert folder.plot("ood_scores").is_file() and folder.plot("ood_reliability").is_file()
    assert "## Out of distribution" in folder.report.read_text()
    assert "| noise:30 |" in folder.ood_report.read_text()


def test_evaluate_ood_on_an_exported_model(run: Path, tmp_path: Path, data_dir: Path) -> None:
    models = tmp_path / "models"
    assert (
        runner.invoke(app, ["export", str(run), "--out", str(models), "--name", "m"]).exit_code == 0
    )
    report = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "evaluate-ood", str(models / "m" / "1"), "--ood", "noise:20",
            "--model-data-root", str(data_dir / "medmnist"), "--out", str(report), "--limit", "20",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((report / "ood.json").read_text())["served_scorer"] == "mahalanobis"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("medmnist:pneumoniamnist", "is the training data itself"),
        ("imagefolder:{empty}", "empty"),
        ("noise:0", "positive image count"),
    ],
)
def test_bad_ood_sets_are_clear_errors_and_write_nothing(
    run: Path, tmp_path: Path, data_dir: Path, spec: str, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "evaluate-ood", str(run), "--ood", spec.format(empty=tmp_path / "empty"),
            "--data-root", str(data_dir / "medmnist"), "--out", str(out), "--limit", "20",
        ],
    )  # fmt: skip
    assert result.exit_code != 0
    assert message in flat(result.output).lower() or message in flat(result.output)
    assert not out.exists()


def test_a_multilabel_run_exports_without_trust(tmp_path: Path, data_dir: Path) -> None:
    args = ["train", "--data", "medmnist:chestmnist", "--data-root", str(data_dir / "medmnist")]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path), "--name", "r", "--epochs", "1", *TINY]
    )
    assert result.exit_code == 0, result.output
    models = tmp_path / "models"
    result = runner.invoke(
        app, ["export", str(tmp_path / "r"), "--out", str(models), "--name", "m"]
    )
    assert result.exit_code == 0, result.output
    assert read_card(models / "m" / "1" / "model.onnx").trust is None
