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

from model.mlflow_store import TRACKING_URI_HELP

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
COMMAND_MODULES = ("training.export_cli", "training.cli", "service.cli", "service.loadgen")


def _register_package_commands() -> None:
    for module in COMMAND_MODULES:
        package = module.partition(".")[0]
        if importlib.util.find_spec(package) and importlib.util.find_spec(module):
            importlib.import_module(module).register(app)


_register_package_commands()


def main() -> None:
    app()
