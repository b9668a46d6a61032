"""The run configuration: one dataclass that CLI flags and YAML/JSON files both fill.

Each option is declared once, here: its default, its help text and its validation
(``choices``, ``minimum``...). ``training.cli_options`` derives the flags of ``rectifier
train`` and ``rectifier sweep`` from these declarations, and ``TrainConfig.validate`` checks
config files and flags alike, so an error names the flag and the valid choices either way.

Precedence: dataclass defaults < ``--config`` file < flags given on the command line. The
resolved config is written into the run folder so a run can be repeated with
``rectifier train --config RUN/config.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from training.datasets import data_forms
from training.datasets import monitor_metric as data_monitor_metric
from training.run_folder import RunFolder

OPTIMIZERS = ("adamw", "sgd")
BALANCE = ("none", "loss", "sampler")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTS = ("none", "light", "standard")
# ``rectifier evaluate``'s batch: no gradients to keep, so larger than training's default.
EVALUATE_BATCH_SIZE = 128


class ConfigError(ValueError):
    """A config file or option value is invalid; ``option`` names the offending field."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Option:
    """How one TrainConfig field is described and checked (kept in the field's metadata)."""

    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    flag: str | None = None  # default: --field-name

    def check(self, name: str, value: Any) -> None:
        if value is None:
            return
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"{value!r} is not a valid {name}; choose from {', '.join(self.choices)}", name
            )
        try:
            if self.minimum is not None and value < self.minimum:
                raise ConfigError(f"{name} must be at least {self.minimum:g}", name)
            if self.maximum is not None and value > self.maximum:
                raise ConfigError(f"{name} must be at most {self.maximum:g}", name)
        except TypeError as exc:
            raise ConfigError(f"{name} must be a number, got {value!r}", name) from exc


def option(default: Any, help: str, **checks: Any) -> Any:
    """A TrainConfig field with its description; a mutable default is copied per instance."""
    metadata = {"option": Option(help, **checks)}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    data: str = option("synthetic-signs", f"Dataset: {data_forms()}.")
    data_root: str | None = option(None, "Folder holding the dataset files.")
    arch: str = option("simple_cnn", "Architecture.")
    arch_options: dict[str, Any] = option(
        {}, "Architecture option KEY=VALUE, e.g. width=16 (repeatable).", flag="--arch-option"
    )
    activation: str = option("relu", "Activation spec, e.g. relu or leaky_relu:0.01.")
    img_size: int = option(64, "Input size in pixels.", minimum=8)
    resize_size: int | None = option(
        None, "Shorter side before the centre crop (default: the input size).", minimum=8
    )
    epochs: int = option(20, "Epochs.", minimum=1)
    batch_size: int = option(64, "Batch size.", minimum=1)
    optimizer: str = option("adamw", "Optimiser.", choices=OPTIMIZERS)
    lr: float = option(2e-3, "Peak learning rate.")
    weight_decay: float = option(5e-4, "Weight decay.", minimum=0)
    momentum: float = option(0.9, "SGD momentum.", minimum=0, maximum=1)
    warmup_epochs: float = option(1.0, "Linear warm-up length in epochs.", minimum=0)
    label_smoothing: float = option(0.0, "Label smoothing.", minimum=0, maximum=1)
    augment: str = option("light", "Training augmentation.", choices=AUGMENTS)
    balance: str = option(
        "none",
        "Class balance: loss (class-weighted loss) or sampler (weighted sampling).",
        choices=BALANCE,
    )
    patience: int = option(5, "Early-stopping patience in epochs (0: off).", minimum=0)
    device: str = option("auto", "Device.", choices=DEVICES)
    amp: bool = option(True, "Mixed precision, on CUDA only.")
    workers: int | None = option(
        None, "DataLoader worker processes (default: by core count).", minimum=0
    )
    seed: int = option(0, "Random seed.")
    max_samples: int | None = option(None, "Use at most N images per split.", minimum=1)
    dead_threshold: float = option(
        0.5, "Dead-unit fraction above which a layer is flagged.", minimum=0, maximum=1
    )
    out: str = option("runs", "Parent folder of run folders.")
    name: str | None = option(
        None, "Run folder name (default: from data, arch, activation and seed)."
    )
    progress: bool = option(True, "Progress bars.")
    sync_bn: bool = option(
        False, "SyncBatchNorm across the processes of a data-parallel run (CUDA only)."
    )

    def validate(self) -> TrainConfig:
        for f in fields(self):
            option_of(f).check(f.name, getattr(self, f.name))
        if self.lr <= 0:
            raise ConfigError("lr must be positive", "lr")
        if self.resize_size is not None and self.resize_size < self.img_size:
            raise ConfigError("resize_size cannot be smaller than img_size", "resize_size")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def monitor_metric(self) -> str:
        return data_monitor_metric(self.data)


def option_of(f: Field[Any]) -> Option:
    option: Option = f.metadata["option"]
    return option


def check_option(name: str, value: Any) -> None:
    """Check one value against its field's declaration (for commands that take it alone)."""
    declared = {f.name: option_of(f) for f in fields(TrainConfig)}
    declared[name].check(name, value)


def flag_of(name: str) -> str:
    """The command-line flag of a TrainConfig field (``--config`` for the file itself)."""
    declared = {f.name: option_of(f).flag for f in fields(TrainConfig)}
    if name not in declared:
        return "--config"
    return declared[name] or f"--{name.replace('_', '-')}"


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
    return RunFolder(folder).write_config(config.to_dict())
