"""--track mlflow: a real SQLite MLflow store gets the options, metrics, tags and artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.cli import app
from tests.training.tracking.commands import EPOCHS, runner, train_args
from training.run_folder import RunFolder

pytestmark = pytest.mark.tracking


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
