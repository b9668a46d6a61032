"""--track mlflow / tensorboard: a real SQLite MLflow store and real event files on disk."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.cli import app
from tests.helpers.cli import flat
from tests.helpers.server import free_port
from tests.training.test_cli import TINY
from training.run_folder import RunFolder

pytestmark = pytest.mark.tracking

runner = CliRunner()
EPOCHS = 2


def train_args(out: Path, data_dir: Path, *extra: str) -> list[str]:
    return [
        "train", "--data", f"imagefolder:{data_dir / 'folder'}", "--epochs", str(EPOCHS),
        "--out", str(out), "--name", "tracked", *TINY, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, object]:
    """One short run logged to MLflow (SQLite file) and TensorBoard (default folder) at once."""
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = runner.invoke(
        app,
        train_args(root / "runs", data_dir, "--track", f"mlflow={uri}", "--track", "tensorboard"),
    )
    assert result.exit_code == 0, result.output
    return {"uri": uri, "run_dir": root / "runs" / "tracked"}


def test_mlflow_run_has_the_options_metrics_tags_and_artifacts(tracked_run) -> None:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracked_run["uri"])
    runs = mlflow.search_runs(
        experiment_names=["rectifier"],
        filter_string="attributes.run_name = 'tracked'",
        output_format="list",
    )
    assert len(runs) == 1
    run = runs[0]
    config = json.loads(RunFolder(tracked_run["run_dir"]).metrics.read_text())
    assert run.info.run_name == "tracked" and run.info.status == "FINISHED"
    assert run.data.params["epochs"] == str(EPOCHS)
    assert run.data.params["arch_options.width"] == "4"
    assert run.data.params["lr"] and run.data.params["seed"] == "0"
    assert run.data.tags["architecture"] == "simple_cnn"
    assert run.data.tags["activation"] == "relu"
    assert run.data.tags["dataset"] == config["dataset"]
    metrics = run.data.metrics
    for key in ("train_loss", "val_loss", "val_acc", "lr", "images_per_second", "test_acc"):
        assert key in metrics, key
    layers = [s["layer"] for s in config["layers"]]
    assert layers and all(f"dead_fraction/{layer}" in metrics for layer in layers)
    assert all(f"sparsity/{layer}" in metrics for layer in layers)
    client = MlflowClient(tracking_uri=tracked_run["uri"])
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))
    assert [m.value for m in history] == pytest.approx([e["val_loss"] for e in config["epochs"]])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    folder = RunFolder(tracked_run["run_dir"])
    reports = {p.name for p in folder.reports()}
    assert {folder.report.name, folder.metrics.name, folder.config.name} < reports  # and plots
    assert reports <= artifacts


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


def test_bad_track_values_name_the_flag(tmp_path: Path, data_dir: Path) -> None:
    for value, message in (("wandb", "choose mlflow"), ("mlflow=", "give a target")):
        result = runner.invoke(app, train_args(tmp_path, data_dir, "--track", value))
        assert result.exit_code == 2, result.output
        assert "--track" in flat(result.output) and message in flat(result.output)


def test_unusable_tensorboard_folder_fails_before_training(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    target = tmp_path / "file" / "board"
    result = runner.invoke(
        app, train_args(tmp_path / "runs", data_dir, "--track", f"tensorboard={target}")
    )
    assert result.exit_code == 2, result.output
    assert "TensorBoard cannot write" in flat(result.output) and "--track" in flat(result.output)
    assert not (tmp_path / "runs").exists()


def test_unreachable_server_fails_before_training(tmp_path: Path, data_dir: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, train_args(tmp_path / "runs", data_dir, "--track", f"mlflow={uri}"))
    assert result.exit_code == 2, result.output
    assert f"MLflow at {uri} is not usable" in flat(result.output)
    assert "--track-optional" in flat(result.output)
    assert not (tmp_path / "runs").exists()  # nothing trained, no run folder


def test_track_optional_warns_once_and_trains_with_the_others(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    board = tmp_path / "board"
    args = ["--track", f"mlflow={uri}", "--track", f"tensorboard={board}", "--track-optional"]
    with caplog.at_level(logging.WARNING, logger="training.tracking"):
        result = runner.invoke(app, train_args(tmp_path / "runs", data_dir, *args))
    assert result.exit_code == 0, result.output
    warnings = [r for r in caplog.records if r.name.startswith("training.tracking")]
    assert len(warnings) == 1 and uri in warnings[0].getMessage()
    assert RunFolder(tmp_path / "runs" / "tracked").best.is_file()
    assert list((board / "tracked").glob("events.out.tfevents.*"))  # DIR/<run name>


def test_sweep_runs_are_children_of_one_parent_run(
    tracked_run, tmp_path: Path, data_dir: Path
) -> None:
    import mlflow

    from training.compare.sweep import sweep_files

    result = runner.invoke(
        app,
        [
            "sweep", "--activations", "relu,elu", "--data", f"imagefolder:{data_dir / 'folder'}",
            "--epochs", "1", "--out", str(tmp_path), *TINY,
            "--track", f"mlflow={tracked_run['uri']}",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mlflow.set_tracking_uri(tracked_run["uri"])
    (parent,) = mlflow.search_runs(
        experiment_names=["rectifier"], filter_string="tags.kind = 'sweep'", output_format="list"
    )
    children = mlflow.search_runs(
        experiment_names=["rectifier"],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        output_format="list",
    )
    assert sorted(r.data.tags["activation"] for r in children) == ["elu", "relu"]
    assert all("test_acc" in r.data.metrics for r in children)
    assert parent.data.params["epochs"] == "1" and parent.info.status == "FINISHED"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id)}
    assert {p.name for p in sweep_files(Path())} <= artifacts


def test_a_resumed_run_logs_its_remaining_epochs_to_a_new_run(
    tracked_run, tmp_path: Path, data_dir: Path
) -> None:
    import mlflow
    from mlflow import MlflowClient

    track = ["--track", f"mlflow={tracked_run['uri']}"]
    first = train_args(tmp_path, data_dir, *track)
    first[first.index("--name") + 1] = "resumable"
    first[first.index("--epochs") + 1] = "1"
    assert runner.invoke(app, first).exit_code == 0
    resumed = runner.invoke(
        app, ["train", "--resume", str(tmp_path / "resumable"), "--epochs", "2", *track]
    )
    assert resumed.exit_code == 0, resumed.output
    mlflow.set_tracking_uri(tracked_run["uri"])
    runs = mlflow.search_runs(
        experiment_names=["rectifier"],
        filter_string="attributes.run_name = 'resumable'",
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    assert [r.data.tags.get("resumed_at_epoch") for r in runs] == [None, "2"]
    client = MlflowClient(tracking_uri=tracked_run["uri"])
    steps = [[m.step for m in client.get_metric_history(r.info.run_id, "val_loss")] for r in runs]
    assert steps == [[1], [2]]
