"""A sweep's MLflow parent run, with each run of the sweep a child run."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.cli import app
from tests.helpers.datasets import TINY
from tests.training.tracking.commands import runner

pytestmark = pytest.mark.tracking


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
