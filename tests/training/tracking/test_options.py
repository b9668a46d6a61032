"""The --track flags: malformed values name the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.cli import app
from tests.helpers.cli import flat
from tests.training.tracking.commands import runner, train_args
from training.tracking.options import TrackingError, TrackSpec, parse_track

pytestmark = pytest.mark.tracking


def test_bad_track_values_name_the_flag(tmp_path: Path, data_dir: Path) -> None:
    for value, message in (("wandb", "choose mlflow"), ("mlflow=", "give a target")):
        result = runner.invoke(app, train_args(tmp_path, data_dir, "--track", value))
        assert result.exit_code == 2, result.output
        assert "--track" in flat(result.output) and message in flat(result.output)


def test_each_tracker_once_with_an_optional_target() -> None:
    specs = parse_track(["mlflow", "tensorboard=logs"])
    assert specs == (TrackSpec("mlflow"), TrackSpec("tensorboard", "logs"))
    with pytest.raises(TrackingError, match="given twice"):
        parse_track(["mlflow", "mlflow=sqlite:///other.db"])
