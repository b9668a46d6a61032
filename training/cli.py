"""``rectifier train``, ``rectifier evaluate`` and ``rectifier sweep``.

Importing this module must stay fast and torch-free (``rectifier --help``, the serving
image): torch and everything that pulls it in are imported inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from training.config import TrainConfig

DATA_HELP = "Dataset: medmnist:FLAG, gtsrb[:roi], imagefolder:DIR or synthetic-signs[:N]."


def _options(
    *,
    data: str | None,
    data_root: Path | None,
    arch: str | None,
    arch_option: list[str] | None,
    activation: str | None,
    img_size: int | None,
    resize_size: int | None,
    epochs: int | None,
    batch_size: int | None,
    optimizer: str | None,
    lr: float | None,
    weight_decay: float | None,
    warmup_epochs: float | None,
    augment: str | None,
    balance: str | None,
    patience: int | None,
    device: str | None,
    amp: bool | None,
    workers: int | None,
    seed: int | None,
    max_samples: int | None,
    out: Path | None,
    name: str | None,
    progress: bool | None,
) -> dict[str, Any]:
    """The flags that were given, as TrainConfig fields (None means: not given)."""
    return {
        "data": data,
        "data_root": str(data_root) if data_root else None,
        "arch": arch,
        "arch_options": parse_arch_options(arch_option) if arch_option else None,
        "activation": activation,
        "img_size": img_size,
        "resize_size": resize_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup_epochs": warmup_epochs,
        "augment": augment,
        "balance": balance,
        "patience": patience,
        "device": device,
        "amp": amp,
        "workers": workers,
        "seed": seed,
        "max_samples": max_samples,
        "out": str(out) if out else None,
        "name": name,
        "progress": progress,
    }


def parse_arch_options(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"expected KEY=VALUE, got {item!r}", param_hint="--arch-option"
            )
        value: Any = raw
        for convert in (int, float):
            try:
                value = convert(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        options[key.strip()] = value
    return options


def build_config(
    config_file: Path | None, base: dict[str, Any] | None, flags: dict[str, Any]
) -> TrainConfig:
    """Defaults < ``base`` (a resumed run's config) < config file < flags; checked."""
    from training.config import ConfigError, read_config_file, resolve_config

    try:
        values = dict(base or {})
        if config_file is not None:
            values.update(read_config_file(config_file))
        values.update({k: v for k, v in flags.items() if v is not None})
        config = resolve_config(None, **values)
    except ConfigError as exc:
        hint = "--config" if exc.option in (None, "config") else f"--{exc.option.replace('_', '-')}"
        raise typer.BadParameter(str(exc), param_hint=hint) from exc
    check_choices(config)
    return config


def check_choices(config: TrainConfig) -> None:
    """Fail before any work on a name that is not registered, listing the valid ones."""
    from model.activations import ActivationSpecError, parse_activation
    from model.architectures import ARCHITECTURES, ArchitectureDef
    from training.datasets import DatasetError
    from training.datasets import parse_data_spec as parse

    definition: ArchitectureDef | None = ARCHITECTURES.get(config.arch)
    if definition is None:
        raise typer.BadParameter(
            f"unknown architecture {config.arch!r}; valid choices: {', '.join(ARCHITECTURES)}",
            param_hint="--arch",
        )
    unknown = set(config.arch_options) - set(definition.options)
    if unknown:
        raise typer.BadParameter(
            f"{config.arch} does not take {', '.join(sorted(unknown))}; it takes: "
            f"{', '.join(definition.options) or 'no options'}",
            param_hint="--arch-option",
        )
    try:
        parse_activation(config.activation)
    except ActivationSpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--activation") from exc
    try:
        parse(config.data)
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc


def _data_error(exc: Exception) -> typer.BadParameter:
    return typer.BadParameter(str(exc), param_hint="--data / --data-root")


# Shared option declarations: every flag defaults to None, meaning "not given", so a
# --config file can supply it.
_DATA = typer.Option(None, "--data", help=DATA_HELP)
_DATA_ROOT = typer.Option(None, "--data-root", help="Folder holding the dataset files.")
_ARCH = typer.Option(None, "--arch", help="Architecture (default simple_cnn).")
_ARCH_OPTION = typer.Option(
    None, "--arch-option", help="Architecture option KEY=VALUE, e.g. width=16 (repeatable)."
)
_IMG_SIZE = typer.Option(None, "--img-size", min=8, help="Input size in pixels (default 64).")
_RESIZE = typer.Option(None, "--resize-size", help="Shorter side before the centre crop.")
_EPOCHS = typer.Option(None, "--epochs", min=1, help="Epochs (default 20).")
_BATCH = typer.Option(None, "--batch-size", min=1, help="Batch size (default 64).")
_OPTIMIZER = typer.Option(None, "--optimizer", help="adamw or sgd.")
_LR = typer.Option(None, "--lr", help="Peak learning rate.")
_WD = typer.Option(None, "--weight-decay", help="Weight decay.")
_WARMUP = typer.Option(None, "--warmup-epochs", help="Linear warm-up length in epochs.")
_AUGMENT = typer.Option(None, "--augment", help="none, light or standard.")
_BALANCE = typer.Option(
    None, "--balance", help="none, loss (class-weighted loss) or sampler (weighted sampling)."
)
_PATIENCE = typer.Option(None, "--patience", help="Early-stopping patience in epochs (0: off).")
_DEVICE = typer.Option(None, "--device", help="auto, cpu or cuda.")
_AMP = typer.Option(None, "--amp/--no-amp", help="Mixed precision on CUDA (default on).")
_WORKERS = typer.Option(None, "--workers", min=0, help="DataLoader worker processes.")
_MAX_SAMPLES = typer.Option(None, "--max-samples", min=1, help="Use at most N images per split.")
_OUT = typer.Option(None, "--out", help="Parent folder of run folders (default runs/).")
_PROGRESS = typer.Option(None, "--progress/--no-progress", help="Progress bars (default on).")
_CONFIG = typer.Option(None, "--config", help="YAML or JSON file of the same options.")


def train_command(
    data: str | None = _DATA,
    data_root: Path | None = _DATA_ROOT,
    arch: str | None = _ARCH,
    arch_option: list[str] | None = _ARCH_OPTION,
    activation: str | None = typer.Option(
        None, "--activation", help="Activation spec, e.g. relu or leaky_relu:0.01."
    ),
    img_size: int | None = _IMG_SIZE,
    resize_size: int | None = _RESIZE,
    epochs: int | None = _EPOCHS,
    batch_size: int | None = _BATCH,
    optimizer: str | None = _OPTIMIZER,
    lr: float | None = _LR,
    weight_decay: float | None = _WD,
    warmup_epochs: float | None = _WARMUP,
    augment: str | None = _AUGMENT,
    balance: str | None = _BALANCE,
    patience: int | None = _PATIENCE,
    device: str | None = _DEVICE,
    amp: bool | None = _AMP,
    workers: int | None = _WORKERS,
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default 0)."),
    max_samples: int | None = _MAX_SAMPLES,
    out: Path | None = _OUT,
    name: str | None = typer.Option(None, "--name", help="Run folder name."),
    progress: bool | None = _PROGRESS,
    config: Path | None = _CONFIG,
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue a run: its folder or its last.pt."
    ),
) -> None:
    """Train a classifier; writes a run folder with checkpoints, metrics, report and plots."""
    flags = _options(**{k: v for k, v in locals().items() if k not in ("config", "resume")})
    base = None
    if resume is not None:
        from model.checkpoint import CheckpointError, load_checkpoint

        checkpoint_path = resume / "last.pt" if resume.is_dir() else resume
        try:
            state = load_checkpoint(checkpoint_path).training_state
        except CheckpointError as exc:
            raise typer.BadParameter(str(exc), param_hint="--resume") from exc
        if state is None:
            raise typer.BadParameter(
                f"{checkpoint_path} holds no training state; resume from a run's last.pt",
                param_hint="--resume",
            )
        base = state["config"]
    train_config = build_config(config, base, flags)

    from model.architectures import ArchitectureError
    from training.datasets import DatasetError
    from training.run import resume as resume_run
    from training.run import train

    try:
        result = resume_run(resume, train_config) if resume else train(train_config)
    except DatasetError as exc:
        raise _data_error(exc) from exc
    except ArchitectureError as exc:
        raise typer.BadParameter(str(exc), param_hint="--arch-option") from exc
    if result.interrupted:
        typer.echo(f"interrupted; resume with: rectifier train --resume {result.run_dir}", err=True)
        raise typer.Exit(130)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
    typer.echo(f"run folder {result.run_dir}: test {metrics}")


def evaluate_command(
    run: Path = typer.Argument(..., help="A run folder (its best.pt) or a checkpoint file."),
    data: str | None = typer.Option(None, "--data", help=DATA_HELP + " Default: the run's."),
    data_root: Path | None = _DATA_ROOT,
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    workers: int | None = _WORKERS,
    max_samples: int | None = _MAX_SAMPLES,
    output: Path | None = typer.Option(None, "--output", help="Also write the JSON here."),
) -> None:
    """Re-compute the test metrics (and activation diagnostics) of a run or checkpoint."""
    from model.checkpoint import CheckpointError
    from training.datasets import DatasetError
    from training.evaluate import evaluate

    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter(f"{device!r}: choose auto, cpu or cuda", param_hint="--device")
    try:
        result = evaluate(
            run,
            data=data,
            data_root=str(data_root) if data_root else None,
            batch_size=batch_size,
            device=device,
            workers=workers,
            max_samples=max_samples,
        )
    except CheckpointError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN") from exc
    except DatasetError as exc:
        raise _data_error(exc) from exc
    text = result.to_json()
    if output is not None:
        output.write_text(text)
    typer.echo(text)


def sweep_command(
    activations: str = typer.Option(
        "relu,leaky_relu,prelu,elu,silu,gelu", "--activations", help="Comma-separated specs."
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Seeds per activation: 0..N-1."),
    data: str | None = _DATA,
    data_root: Path | None = _DATA_ROOT,
    arch: str | None = _ARCH,
    arch_option: list[str] | None = _ARCH_OPTION,
    img_size: int | None = _IMG_SIZE,
    resize_size: int | None = _RESIZE,
    epochs: int | None = _EPOCHS,
    batch_size: int | None = _BATCH,
    optimizer: str | None = _OPTIMIZER,
    lr: float | None = _LR,
    weight_decay: float | None = _WD,
    warmup_epochs: float | None = _WARMUP,
    augment: str | None = _AUGMENT,
    balance: str | None = _BALANCE,
    patience: int | None = _PATIENCE,
    device: str | None = _DEVICE,
    amp: bool | None = _AMP,
    workers: int | None = _WORKERS,
    max_samples: int | None = _MAX_SAMPLES,
    out: Path | None = _OUT,
    progress: bool | None = _PROGRESS,
    config: Path | None = _CONFIG,
) -> None:
    """Train one architecture per activation and seed; compare them in a table and chart."""
    names = [a.strip() for a in activations.split(",") if a.strip()]
    if not names:
        raise typer.BadParameter("name at least one activation", param_hint="--activations")
    flags = _options(
        **{
            k: v
            for k, v in locals().items()
            if k not in ("activations", "seeds", "config", "names")
        },
        activation=None,
        seed=None,
        name=None,
    )
    base = build_config(config, None, flags)
    from model.activations import ActivationSpecError, parse_activation

    for spec in names:
        try:
            parse_activation(spec)
        except ActivationSpecError as exc:
            raise typer.BadParameter(str(exc), param_hint="--activations") from exc

    from training.datasets import DatasetError
    from training.sweep import run_sweep

    try:
        folder, rows = run_sweep(base, names, list(range(seeds)), Path(base.out))
    except DatasetError as exc:
        raise _data_error(exc) from exc
    typer.echo((folder / "sweep.md").read_text())
    typer.echo(f"sweep folder {folder}")
    if len(rows) < len(names) * seeds:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("sweep")(sweep_command)
