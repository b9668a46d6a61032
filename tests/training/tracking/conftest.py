"""Fixtures of the tracking tests: one tracked run that several modules read."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.cli import app
from tests.training.tracking.commands import runner, train_args


@pytest.fixture(scope="package")
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
