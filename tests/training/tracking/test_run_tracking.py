"""The trackers of one run: reached before training, optional ones dropped with one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from model.cli import app
from tests.helpers.cli import flat
from tests.helpers.server import free_port
from tests.training.tracking.commands import runner, train_args
from training.run_folder import RunFolder

pytestmark = pytest.mark.tracking


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
