"""The ``rectifier`` command line.

Each package contributes its own commands; they import their heavy dependencies (torch,
onnxruntime) inside the command, so ``rectifier --help`` and ``rectifier serve`` stay
fast and work in the torch-free serving image, where the training package is absent.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import typer

app = typer.Typer(
    name="rectifier",
    help="Train ReLU-family CNN classifiers, export them to ONNX, and serve them over HTTP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Keeps ``rectifier`` a command group and sets up logging for every command."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(
            f"{log_level!r} is not a log level; choose DEBUG, INFO, WARNING or ERROR",
            param_hint="--log-level",
        )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


TRACKING_URI_HELP = (
    "MLflow tracking/registry URI: http(s)://HOST:PORT for a server, sqlite:///FILE.db for a "
    "local store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
)


@app.command()
def export(
    checkpoint: Path = typer.Argument(
        ..., help="A checkpoint file, or a run folder (its best.pt is exported)."
    ),
    out: Path = typer.Option(Path("models"), "--out", help="The model repository folder."),
    name: str = typer.Option(..., "--name", help="Model name: letters, digits, '.', '_', '-'."),
    version: int | None = typer.Option(
        None, "--version", min=1, help="Version number (default: the next free one)."
    ),
    quantize: str | None = typer.Option(
        None, "--quantize", help="int8: static QDQ per-channel quantisation (CPU)."
    ),
    calibration: Path | None = typer.Option(
        None,
        "--calibration",
        help="int8 calibration images: a run folder, an image folder or a .npz "
        "(default: the run folder given as CHECKPOINT).",
    ),
    fp16: bool = typer.Option(False, "--fp16", help="float16 weights, for GPU execution."),
    register: str | None = typer.Option(
        None,
        "--register",
        help="Also log the ONNX file to the MLflow model registry as a new version of NAME.",
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help=TRACKING_URI_HELP + " Used with --register."
    ),
) -> None:
    """Export a checkpoint to OUT/NAME/VERSION/model.onnx with its card, checked for parity."""
    from model.checkpoint import CheckpointError
    from model.export import ExportError, export_checkpoint

    if tracking_uri is not None and register is None:
        raise typer.BadParameter(
            "only means something with --register NAME", param_hint="--tracking-uri"
        )
    path = checkpoint / "best.pt" if checkpoint.is_dir() else checkpoint
    if quantize is not None or fp16:
        from model.quantize import export_from_cli

        calibration = calibration or (checkpoint if checkpoint.is_dir() else None)
        line, written = export_from_cli(path, out, name, version, quantize, calibration, fp16)
        typer.echo(line)
    else:
        try:
            result = export_checkpoint(path, out, name, version=version)
        except (CheckpointError, ExportError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="CHECKPOINT") from exc
        written = result.path
        typer.echo(
            f"wrote {result.path} (max abs diff vs PyTorch {result.parity.max_abs_diff:.2e}, "
            f"top-1 agreement {result.parity.top1_agreement:.0%})"
        )
    if register is not None:
        _register(written, register, tracking_uri)


def _register(path: Path, name: str, tracking_uri: str | None) -> None:
    from model.registry import RegistryError, register_onnx

    try:
        registered = register_onnx(path, name, tracking_uri)
    except RegistryError as exc:
        typer.echo(f"error: {path} was exported but not registered: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"registered {registered.model_uri} in {registered.tracking_uri} "
        f"(run {registered.run_id}); serve it with: rectifier pull {registered.model_uri} "
        f"--tracking-uri {registered.tracking_uri} --out MODELS"
    )


@app.command()
def pull(
    model_uri: str = typer.Argument(
        ..., help="models:/NAME/VERSION, models:/NAME/ALIAS or models:/NAME@ALIAS."
    ),
    out: Path = typer.Option(Path("models"), "--out", help="The model repository folder."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=TRACKING_URI_HELP),
) -> None:
    """Write a registered model version into OUT/NAME/VERSION/model.onnx for `rectifier serve`."""
    from model.registry import RegistryError, pull_model

    try:
        pulled = pull_model(model_uri, out, tracking_uri)
    except RegistryError as exc:
        raise typer.BadParameter(str(exc), param_hint="MODEL_URI") from exc
    state = "already present" if pulled.already_present else "wrote"
    typer.echo(f"{state} {pulled.path} ({pulled.name} version {pulled.version})")


# Modules that add commands with ``register(app)``. A module whose package is not
# installed (training, in the serving image) is skipped.
COMMAND_MODULES = ("training.cli", "service.cli", "service.loadgen")


def _register_package_commands() -> None:
    for module in COMMAND_MODULES:
        package = module.partition(".")[0]
        if importlib.util.find_spec(package) and importlib.util.find_spec(module):
            importlib.import_module(module).register(app)


_register_package_commands()


def main() -> None:
    app()
