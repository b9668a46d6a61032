"""The ``rectifier`` command line.

Each package contributes its own commands; they import their heavy dependencies (torch,
onnxruntime) inside the command, so ``rectifier --help`` and ``rectifier serve`` stay
fast and work in the torch-free serving image, where the training package is absent.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer

from model.cli_root import RootOptions
from model.log_setup import (
    DEFAULT_LOG_LEVEL,
    LOG_LEVEL_VARIABLE,
    LOG_LEVELS,
    LogLevelError,
    configure_text_logging,
    resolve_log_level,
)

log = logging.getLogger(__name__)

app = typer.Typer(
    name="rectifier",
    help="Train ReLU-family CNN classifiers, export them to ONNX, and serve them over HTTP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    log_level: str | None = typer.Option(
        None,
        "--log-level",
        help=f"{', '.join(LOG_LEVELS)}; else {LOG_LEVEL_VARIABLE}, else {DEFAULT_LOG_LEVEL}.",
    ),
) -> None:
    """Keeps ``rectifier`` a command group and sets up logging for every command."""
    try:
        level = resolve_log_level(log_level)
    except LogLevelError as exc:
        if log_level is not None:
            raise typer.BadParameter(str(exc), param_hint="--log-level") from exc
        typer.echo(f"error: {LOG_LEVEL_VARIABLE}: {exc}", err=True)
        raise typer.Exit(2) from exc
    ctx.obj = RootOptions(log_level=level)
    configure_text_logging(level)


COMMAND_GROUP = "rectifier.commands"


def _register_package_commands() -> None:
    """Every ``register(app)`` of the ``rectifier.commands`` entry points (pyproject.toml).

    An entry point whose module or dependencies are absent (training in the serving image,
    the service without its extra) is skipped: that command is not installed.
    """
    for entry in entry_points(group=COMMAND_GROUP):
        try:
            register = entry.load()
        except ModuleNotFoundError as exc:
            log.debug("rectifier %s is not installed here: %s", entry.name, exc)
            continue
        register(app)


_register_package_commands()


def main() -> None:
    app()
