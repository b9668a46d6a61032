"""``rectifier train``, ``rectifier evaluate`` and ``rectifier sweep``.

The training flags come from TrainConfig's declarations (``training.cli_options``).
Importing this module must stay fast and torch-free (``rectifier --help``, the serving
image): torch and everything that pulls it in are imported inside the command bodies.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from training.cli_options import config_values, with_train_options
from training.config import EVALUATE_BATCH_SIZE, TrainConfig, flag_of
from training.run_folder import LAST, checkpoint_in
from training.tracking.options import TRACK_HELP

if TYPE_CHECKING:
    from training.datasets import DatasetError
    from training.tracking.options import TrackingOptions


def build_config(
    config_file: Path | None, base: dict[str, Any] | None, flags: dict[str, Any]
) -> TrainConfig:
    """Defaults < ``base`` (a resumed run's config) < config file < flags; checked."""
    from training.config import ConfigError, read_config_file, resolve_config

    try:
        values = dict(base or {})
        if config_file is not None:
            values.update(read_config_file(config_file))
        values.update({k: v for k, v in config_values(flags).items() if v is not None})
        config = resolve_config(None, **values)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag_of(exc.option or "config")) from exc
    check_choices(config)
    return config


def check_choices(config: TrainConfig) -> None:
    """Fail before any work on a name that is not registered, listing the valid ones."""
    from model.activations import ActivationSpecError, parse_activation
    from model.architectures import ARCHITECTURES, ArchitectureDef
    from training.datasets import DatasetError, parse_data_spec

    definition: ArchitectureDef | None = ARCHITECTURES.get(config.arch)
    if definition is None:
        raise typer.BadParameter(
            f"unknown architecture {config.arch!r}; valid choices: {', '.join(ARCHITECTURES)}",
            param_hint=flag_of("arch"),
        )
    unknown = set(config.arch_options) - set(definition.options)
    if unknown:
        raise typer.BadParameter(
            f"{config.arch} does not take {', '.join(sorted(unknown))}; it takes: "
            f"{', '.join(definition.options) or 'no options'}",
            param_hint=flag_of("arch_options"),
        )
    try:
        parse_activation(config.activation)
    except ActivationSpecError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag_of("activation")) from exc
    try:
        parse_data_spec(config.data)
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag_of("data")) from exc


def check_data_parallel(config: TrainConfig, world_size: int | None) -> None:
    """Refuse, before any process starts, what a data-parallel run cannot do."""
    if world_size is None:
        if config.sync_bn:
            raise typer.BadParameter(
                "SyncBatchNorm synchronises the processes of a data-parallel run: "
                "use it with --nproc-per-node N or under torchrun",
                param_hint=flag_of("sync_bn"),
            )
        return
    if config.batch_size % world_size:
        raise typer.BadParameter(
            f"{config.batch_size} is the global batch and must divide evenly over "
            f"{world_size} processes",
            param_hint=flag_of("batch_size"),
        )
    if config.balance == "sampler":
        raise typer.BadParameter(
            "weighted sampling is not distributed; use --balance loss in a data-parallel run",
            param_hint=flag_of("balance"),
        )
    if config.sync_bn:
        import torch

        if config.device == "cpu" or not torch.cuda.is_available():
            raise typer.BadParameter(
                "SyncBatchNorm needs CUDA (torch runs it on GPU modules only); on the CPU "
                "each process normalises over its own share of the batch",
                param_hint=flag_of("sync_bn"),
            )


def _data_error(exc: DatasetError) -> typer.BadParameter:
    return typer.BadParameter(str(exc), param_hint=f"{flag_of('data')} / {flag_of('data_root')}")


# The training options evaluation shares: where the data is and how to feed the model.
EVALUATE_OPTIONS = ("data", "data_root", "batch_size", "device", "workers", "max_samples")

_CONFIG = typer.Option(None, "--config", help="YAML or JSON file of the same options.")
_TRACK = typer.Option(None, "--track", help=TRACK_HELP)
_TRACK_OPTIONAL = typer.Option(
    False,
    "--track-optional",
    help="When a tracker cannot be reached at the start, warn once and train without it.",
)


def tracking_options(track: list[str] | None, optional: bool) -> TrackingOptions:
    """The --track flags, checked before any work (naming the flag on a bad value)."""
    from training.tracking.options import TrackingError, TrackingOptions, parse_track

    try:
        return TrackingOptions(parse_track(track or ()), optional=optional)
    except TrackingError as exc:
        raise typer.BadParameter(str(exc), param_hint="--track") from exc


def _unavailable(exc: Exception) -> typer.BadParameter:
    return typer.BadParameter(str(exc), param_hint="--track")


def _report_tracking_failures(failures: list[str]) -> None:
    for failure in failures:
        typer.echo(f"warning: tracking {failure}; the run folder is complete", err=True)


@with_train_options()
def train_command(
    flags: dict[str, Any],
    config: Path | None = _CONFIG,
    resume: Path | None = typer.Option(
        None, "--resume", help=f"Continue a run: its folder or its {LAST}."
    ),
    track: list[str] | None = _TRACK,
    track_optional: bool = _TRACK_OPTIONAL,
    nproc_per_node: int | None = typer.Option(
        None,
        "--nproc-per-node",
        min=1,
        help="Data-parallel: N processes on this machine (DDP; gloo on the CPU, NCCL and one "
        "GPU each on CUDA). --batch-size is then the global batch.",
    ),
) -> None:
    """Train a classifier; writes a run folder with checkpoints, metrics, report and plots.

    Under torchrun (``torchrun ... -m training FLAGS``) each process runs one rank."""
    tracking = tracking_options(track, track_optional)
    base = None
    if resume is not None:
        from model.checkpoint import CheckpointError, load_checkpoint

        checkpoint_path = checkpoint_in(resume, "last")
        try:
            state = load_checkpoint(checkpoint_path).training_state
        except CheckpointError as exc:
            raise typer.BadParameter(str(exc), param_hint="--resume") from exc
        if state is None:
            raise typer.BadParameter(
                f"{checkpoint_path} holds no training state; resume from a run's {LAST}",
                param_hint="--resume",
            )
        base = state["config"]
    train_config = build_config(config, base, flags)
    from training.distributed import in_launched_process, launched_world_size

    if nproc_per_node is not None and in_launched_process():
        raise typer.BadParameter(
            "this process was started by torchrun, whose own --nproc-per-node counts the "
            "processes; drop it from the training flags",
            param_hint="--nproc-per-node",
        )
    check_data_parallel(train_config, launched_world_size() or nproc_per_node)

    from model.architectures import ArchitectureError
    from training.datasets import DatasetError
    from training.launch import (
        DistributedRunError,
        DistributedRunInterrupted,
        TrainingJob,
        launch_on_this_node,
        run_worker,
    )
    from training.run import resume as resume_run
    from training.run import train
    from training.tracking.run_tracking import TrackingUnavailable

    job = TrainingJob(train_config, resume, tracking, logging.getLogger().getEffectiveLevel())
    try:
        if in_launched_process():
            result = run_worker(job)
        elif nproc_per_node is not None:
            result = launch_on_this_node(job, nproc_per_node)[0]
        elif resume is not None:
            result = resume_run(resume, train_config, tracking)
        else:
            result = train(train_config, tracking)
    except TrackingUnavailable as exc:
        raise _unavailable(exc) from exc
    except DatasetError as exc:
        raise _data_error(exc) from exc
    except ArchitectureError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag_of("arch_options")) from exc
    except DistributedRunError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(130 if isinstance(exc, DistributedRunInterrupted) else 1) from None
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 speaks for the run
    _report_tracking_failures(result.tracking_failures)
    if result.interrupted:
        typer.echo(f"interrupted; resume with: rectifier train --resume {result.run_dir}", err=True)
        raise typer.Exit(130)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
    typer.echo(f"run folder {result.run_dir}: test {metrics}")


@with_train_options(
    only=EVALUATE_OPTIONS,
    defaults={"data": None, "data_root": None, "batch_size": EVALUATE_BATCH_SIZE},
)
def evaluate_command(
    flags: dict[str, Any],
    run: Path = typer.Argument(..., help="A run folder (its best checkpoint) or a checkpoint."),
    output: Path | None = typer.Option(None, "--output", help="Also write the JSON here."),
) -> None:
    """Re-compute the test metrics (and activation diagnostics) of a run or checkpoint.

    --data and --data-root default to the run's."""
    from model.checkpoint import CheckpointError
    from training.config import ConfigError, check_option
    from training.datasets import DatasetError
    from training.evaluate import evaluate

    given = {name: value for name, value in flags.items() if value is not None}
    try:
        for name, value in given.items():
            check_option(name, value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag_of(exc.option or "config")) from exc
    try:
        result = evaluate(run, **given)
    except CheckpointError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN") from exc
    except DatasetError as exc:
        raise _data_error(exc) from exc
    text = result.to_json()
    if output is not None:
        output.write_text(text)
    typer.echo(text)


@with_train_options(exclude=("activation", "seed", "name", "sync_bn"))
def sweep_command(
    flags: dict[str, Any],
    activations: str = typer.Option(
        "relu,leaky_relu,prelu,elu,silu,gelu", "--activations", help="Comma-separated specs."
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Seeds per activation: 0..N-1."),
    config: Path | None = _CONFIG,
    track: list[str] | None = _TRACK,
    track_optional: bool = _TRACK_OPTIONAL,
) -> None:
    """Train one architecture per activation and seed; compare them in a table and chart."""
    tracking = tracking_options(track, track_optional)
    names = [a.strip() for a in activations.split(",") if a.strip()]
    if not names:
        raise typer.BadParameter("name at least one activation", param_hint="--activations")
    base = build_config(config, None, flags)
    from model.activations import ActivationSpecError, parse_activation

    for spec in names:
        try:
            parse_activation(spec)
        except ActivationSpecError as exc:
            raise typer.BadParameter(str(exc), param_hint="--activations") from exc

    from training.compare.sweep import run_sweep, sweep_files
    from training.datasets import DatasetError
    from training.tracking.run_tracking import TrackingUnavailable

    try:
        folder, rows = run_sweep(base, names, list(range(seeds)), Path(base.out), tracking)
    except TrackingUnavailable as exc:
        raise _unavailable(exc) from exc
    except DatasetError as exc:
        raise _data_error(exc) from exc
    typer.echo(sweep_files(folder)[1].read_text())
    typer.echo(f"sweep folder {folder}")
    if len(rows) < len(names) * seeds:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("sweep")(sweep_command)
