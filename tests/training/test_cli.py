"""``rectifier train / evaluate`` from the command line, and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.cli import app
from tests.helpers.datasets import TINY
from training.run_folder import RunFolder

runner = CliRunner()


def test_module_import_is_torch_free() -> None:
    code = "import sys, training.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("args", "flag", "listed"),
    [
        (["--arch", "vgg99"], "--arch", "resnet18"),
        (["--data", "cifar10"], "--data", "medmnist:FLAG"),
        (["--data", "medmnist:nosuch"], "--data", "pneumoniamnist"),
        (["--activation", "relux"], "--activation", "leaky_relu"),
        (["--optimizer", "adam"], "--optimizer", "adamw"),
        (["--augment", "heavy"], "--augment", "standard"),
        (["--balance", "oversample"], "--balance", "sampler"),
        (["--device", "tpu"], "--device", "cuda"),
        (["--arch-option", "blocks=3"], "--arch-option", "width"),
    ],
)
def test_bad_flags_name_the_flag_and_the_choices(args: list[str], flag: str, listed: str) -> None:
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2
    text = " ".join(result.output.split())  # undo the rich box's line wrapping
    assert flag in text and listed in text


def test_bad_architecture_option_value_is_a_clean_error(data_dir: Path, tmp_path: Path) -> None:
    args = ["--data", "imagefolder:folder", "--data-root", str(data_dir), "--out", str(tmp_path)]
    result = runner.invoke(app, ["train", *args, "--arch-option", "depth=9", "--no-progress"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "--arch-option" in text and "1..6" in text


def test_missing_data_files_are_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--data", "medmnist:breastmnist", "--data-root", str(tmp_path), *TINY]
    )
    assert result.exit_code == 2 and "breastmnist" in result.output


@pytest.mark.heavy
def test_train_from_a_config_file_then_evaluate(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data: medmnist:pneumoniamnist\ndata_root: {data_dir / 'medmnist'}\nepochs: 3\n"
        f"out: {tmp_path / 'runs'}\nname: cli\n"
    )
    # The flag beats the file: one epoch, not three.
    result = runner.invoke(app, ["train", "--config", str(config), "--epochs", "1", *TINY])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "cli"
    metrics = json.loads(RunFolder(run).metrics.read_text())
    assert len(metrics["epochs"]) == 1

    result = runner.invoke(app, ["evaluate", str(run), "--output", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "e.json").read_text())
    assert evaluation["test"]["acc"] == pytest.approx(metrics["test"]["acc"])
    assert evaluation["dataset"] == "medmnist:pneumoniamnist"
    assert [layer["layer"] for layer in evaluation["layers"]] == [
        layer["layer"] for layer in metrics["layers"]
    ]


@pytest.mark.heavy
def test_evaluate_refuses_a_different_dataset(tmp_path: Path, data_dir: Path) -> None:
    args = ["train", "--data", "medmnist:pneumoniamnist", "--data-root", str(data_dir / "medmnist")]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path), "--name", "r", "--epochs", "1", *TINY]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(RunFolder(tmp_path / "r").best),
            "--data",
            "gtsrb",
            "--data-root",
            str(data_dir / "gtsrb_root"),
        ],
    )
    assert result.exit_code == 2 and "not the same dataset" in result.output


def test_evaluate_takes_the_training_options_it_shares_with_its_own_batch_default() -> None:
    from training.cli import EVALUATE_OPTIONS
    from training.config import EVALUATE_BATCH_SIZE, flag_of

    result = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in EVALUATE_OPTIONS:
        assert flag_of(name) in result.output
    assert f"(default {EVALUATE_BATCH_SIZE})" in result.output
    assert "--epochs" not in result.output


@pytest.mark.parametrize(
    ("args", "flag"), [(["--batch-size", "0"], "--batch-size"), (["--device", "tpu"], "--device")]
)
def test_evaluate_checks_its_options_as_train_does(
    tmp_path: Path, args: list[str], flag: str
) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path), *args])
    assert result.exit_code == 2 and flag in result.output


@pytest.mark.heavy
def test_resume_from_the_command_line_extends_a_run(tmp_path: Path, data_dir: Path) -> None:
    args = ["train", "--data", "imagefolder:folder", "--data-root", str(data_dir)]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path), "--name", "r", "--epochs", "1", *TINY]
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "r"
    # The recorded config is reused; only the epoch budget changes.
    result = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(RunFolder(run).metrics.read_text())["epochs"]) == 2
    assert "epochs: 2" in RunFolder(run).config.read_text()


def test_resume_needs_a_training_state(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and "--resume" in result.output
