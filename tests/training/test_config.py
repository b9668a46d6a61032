from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config import ConfigError, TrainConfig, read_config_file, resolve_config, write_config


def test_file_overrides_defaults_and_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nbatch-size: 16\nactivation: elu\narch_options: {width: 8}\n")
    config = resolve_config(path, epochs=7, activation=None)
    assert (config.epochs, config.batch_size, config.activation) == (7, 16, "elu")
    assert config.arch_options == {"width": 8} and config.lr == TrainConfig().lr


def test_json_config_and_round_trip_of_the_written_config(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"data": "gtsrb", "img_size": 48}))
    config = resolve_config(tmp_path / "c.json")
    written = write_config(config, tmp_path)
    assert resolve_config(written) == config


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("epochz: 3\n", "unknown option"),
        ("- 1\n- 2\n", "mapping"),
        ("optimizer: adam\n", "adamw, sgd"),
        ("epochs: [1\n", "not valid"),
    ],
)
def test_bad_files_are_explained(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        resolve_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file("/nonexistent/run.yaml")


def test_monitor_metric_is_auc_for_medmnist() -> None:
    assert TrainConfig(data="medmnist:dermamnist").monitor_metric == "auc"
    assert TrainConfig(data="gtsrb").monitor_metric == "acc"
