"""The run configuration: one dataclass that CLI flags and YAML/JSON files both fill.

Precedence: dataclass defaults < ``--config`` file < flags given on the command line. The
resolved config is written into the run folder (``config.yaml``) so a run can be repeated
with ``rectifier train --config RUN/config.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

OPTIMIZERS = ("adamw", "sgd")
BALANCE = ("none", "loss", "sampler")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A config file or option value is invalid; ``option`` names the offending field."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass
class TrainConfig:
    data: str = "synthetic-signs"
    data_root: str | None = None
    arch: str = "simple_cnn"
    arch_options: dict[str, Any] = field(default_factory=dict)
    activation: str = "relu"
    img_size: int = 64
    resize_size: int | None = None  # shorter side before the centre crop; default img_size
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    augment: str = "light"
    balance: str = "none"
    patience: int = 5  # epochs without validation improvement before stopping; 0 = never
    device: str = "auto"
    amp: bool = True  # mixed precision, on CUDA only
    workers: int | None = None  # DataLoader worker processes; default by core count
    seed: int = 0
    max_samples: int | None = None  # per split, for quick runs
    dead_threshold: float = 0.5
    out: str = "runs"
    name: str | None = None  # run folder name; default from data, arch and activation
    progress: bool = True

    def validate(self) -> TrainConfig:
        from training.data import AUGMENTS

        choices = {
            "optimizer": OPTIMIZERS,
            "balance": BALANCE,
            "device": DEVICES,
            "augment": AUGMENTS,
        }
        for option, valid in choices.items():
            value = getattr(self, option)
            if value not in valid:
                raise ConfigError(
                    f"{value!r} is not a valid {option}; choose from {', '.join(valid)}", option
                )
        positive = ("img_size", "epochs", "batch_size")
        for option in positive:
            if getattr(self, option) < 1:
                raise ConfigError(f"{option} must be at least 1", option)
        if self.lr <= 0:
            raise ConfigError("lr must be positive", "lr")
        if self.resize_size is not None and self.resize_size < self.img_size:
            raise ConfigError("resize_size cannot be smaller than img_size", "resize_size")
        if not 0 <= self.dead_threshold <= 1:
            raise ConfigError("dead_threshold must be in [0, 1]", "dead_threshold")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def monitor_metric(self) -> str:
        return "auc" if self.data.startswith("medmnist") else "acc"


def field_names() -> set[str]:
    return {f.name for f in fields(TrainConfig)}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file of TrainConfig fields (dashes may replace underscores)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "config")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path} is not valid {path.suffix[1:] or 'YAML'}: {exc}", "config"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of options", "config")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = set(data) - field_names()
    if unknown:
        raise ConfigError(
            f"{path}: unknown option(s) {', '.join(sorted(unknown))}; "
            f"valid: {', '.join(sorted(field_names()))}",
            "config",
        )
    return data


def resolve_config(file: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the file, then every override that is not None."""
    values = read_config_file(file) if file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc), "config") from exc
    return config.validate()


def write_config(config: TrainConfig, folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path
