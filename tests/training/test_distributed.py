"""Data-parallel training for real: 2 gloo processes started by torch.distributed's elastic
launcher (``rectifier train --nproc-per-node 2``) and by ``torchrun``, on a tiny dataset.

Each launch costs a few seconds of process start-up, so the runs are shared: one
distributed run against one single-process run, and one failed run that is then resumed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.checkpoint import load_checkpoint
from model.cli import app
from model.export import export_checkpoint
from tests.helpers.datasets import tiny_config, write_medmnist
from training.config import TrainConfig
from training.distributed import FAULT_ENV
from training.launch import TrainingJob, launch_on_this_node
from training.run import RunResult, train
from training.run_folder import RunFolder

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(300)]

RECTIFIER = str(Path(sys.executable).with_name("rectifier"))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes told apart by brightness: enough signal for two epochs to learn."""
    root = tmp_path_factory.mktemp("ddp-data")
    write_medmnist(root, "pneumoniamnist", counts=(384, 64, 64), seed=5)
    return root


def config(out: Path, data_root: Path, **overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "data": "medmnist:pneumoniamnist",
        "data_root": str(data_root),
        "epochs": 2,
        "batch_size": 32,  # the global batch: 2 processes x 16
        "augment": "none",
        "lr": 3e-2,
        "warmup_epochs": 0.0,
        "seed": 7,
    }
    values.update(overrides)
    return tiny_config(out, **values)


def cli_args(out: Path, data_root: Path, *extra: str) -> list[str]:
    return [
        "--data", "medmnist:pneumoniamnist", "--data-root", str(data_root),
        "--arch-option", "width=4", "--arch-option", "depth=1", "--arch-option", "dropout=0.0",
        "--img-size", "16", "--epochs", "2", "--batch-size", "32", "--augment", "none",
        "--lr", "3e-2", "--warmup-epochs", "0", "--seed", "7", "--workers", "0",
        "--device", "cpu", "--no-progress", "--patience", "0", "--out", str(out / "runs"),
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def two_process_run(
    tmp_path_factory: pytest.TempPathFactory, data_root: Path
) -> tuple[list[RunResult], Path]:
    out = tmp_path_factory.mktemp("ddp-run")
    return launch_on_this_node(TrainingJob(config(out, data_root)), nproc_per_node=2), out


def test_every_rank_agrees_and_rank_0_alone_writes_one_run_folder(
    two_process_run: tuple[list[RunResult], Path],
) -> None:
    results, out = two_process_run
    assert len(results) == 2
    main, other = results
    # Metrics are all-reduced (training) and gathered (validation): identical on both ranks.
    assert main.history == other.history and len(main.history) == 2
    assert [p.name for p in (out / "runs").iterdir()] == [main.run_dir.name]
    folder = RunFolder(main.run_dir)
    for path in (folder.config, folder.best, folder.last, folder.metrics, folder.report):
        assert path.is_file(), path
    assert not [p for p in folder.path.iterdir() if p.name.startswith(".")]  # no temp file
    metrics = json.loads(folder.metrics.read_text())
    assert metrics["completed"] and metrics["distributed"]["world_size"] == 2
    assert metrics["distributed"]["global_batch"] == 32
    report = folder.report.read_text()
    assert "global batch 32 (16 per process, 2 processes)" in report
    assert "SyncBatchNorm off" in report


def test_checkpoints_have_the_single_process_format_and_export(
    two_process_run: tuple[list[RunResult], Path], tmp_path: Path
) -> None:
    main = two_process_run[0][0]
    best = load_checkpoint(main.best_checkpoint)
    assert not [key for key in best.model.state_dict() if key.startswith("module.")]
    assert "test_acc" in best.metrics
    exported = export_checkpoint(main.best_checkpoint, tmp_path / "models", "ddp")
    assert exported.card.metrics["test_acc"] == pytest.approx(main.test_metrics["acc"])


def test_two_processes_reach_the_accuracy_of_one_with_the_same_global_batch(
    two_process_run: tuple[list[RunResult], Path], data_root: Path, tmp_path: Path
) -> None:
    ours = two_process_run[0][0].history[-1]
    single = train(config(tmp_path, data_root)).history[-1]
    # Close, not identical: the shuffles differ and BatchNorm sees 16 images per process.
    assert single["val_acc"] > 0.9
    assert abs(ours["val_acc"] - single["val_acc"]) <= 0.05
    assert abs(ours["train_loss"] - single["train_loss"]) <= 0.05
    assert abs(ours["val_loss"] - single["val_loss"]) <= 0.15


@pytest.fixture(scope="module")
def failed_run(
    tmp_path_factory: pytest.TempPathFactory, data_root: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``rectifier train --nproc-per-node 2`` whose rank 1 raises at the start of epoch 2."""
    out = tmp_path_factory.mktemp("ddp-fail")
    env = {**os.environ, FAULT_ENV: "1:2"}
    completed = subprocess.run(
        [RECTIFIER, "train", *cli_args(out, data_root), "--nproc-per-node", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return completed, out


def test_a_failing_rank_fails_the_run_with_its_message(
    failed_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, out = failed_run
    assert completed.returncode == 1, completed.stderr[-3000:]
    assert "training failed on rank 1" in completed.stderr
    assert f"fault injected by {FAULT_ENV}=1:2 on rank 1, epoch 2" in completed.stderr
    (run_dir,) = (out / "runs").iterdir()
    folder = RunFolder(run_dir)
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no half-written file
    assert not folder.metrics.exists()  # the run never claims to have finished
    best = load_checkpoint(folder.best)  # epoch 1's, whole
    assert best.config.architecture == "simple_cnn"
    state = load_checkpoint(folder.last).training_state
    assert state is not None and state["epoch"] == 1


def test_torchrun_resumes_the_failed_run_from_its_saved_epoch(
    failed_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = failed_run
    (run_dir,) = (out / "runs").iterdir()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    completed = subprocess.run(
        [*torchrun, "--nproc-per-node", "2", "-m", "training", "--resume", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "resuming at epoch 2 of 2" in completed.stderr
    metrics = json.loads(RunFolder(run_dir).metrics.read_text())
    assert metrics["completed"] and [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert metrics["distributed"]["world_size"] == 2
    assert [p.name for p in (out / "runs").iterdir()] == [run_dir.name]  # the same folder


runner = CliRunner()


@pytest.mark.parametrize(
    ("extra", "flag", "says"),
    [
        (["--batch-size", "15"], "--batch-size", "divide evenly over 2 processes"),
        (["--balance", "sampler"], "--balance", "--balance loss"),
        (["--sync-bn"], "--sync-bn", "needs CUDA"),
        (["--nproc-per-node", "0"], "--nproc-per-node", "greater than or equal"),
    ],
)
def test_distributed_flag_errors_name_the_flag(
    tmp_path: Path, data_root: Path, extra: list[str], flag: str, says: str
) -> None:
    nproc = [] if "--nproc-per-node" in extra else ["--nproc-per-node", "2"]
    result = runner.invoke(app, ["train", *cli_args(tmp_path, data_root), *nproc, *extra])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())  # undo the rich box's wrapping
    assert flag in text and says in text
    assert not (tmp_path / "runs").exists()


def test_sync_bn_without_processes_is_an_error(tmp_path: Path, data_root: Path) -> None:
    result = runner.invoke(app, ["train", *cli_args(tmp_path, data_root), "--sync-bn"])
    assert result.exit_code == 2
    assert "--nproc-per-node" in " ".join(result.output.split())
