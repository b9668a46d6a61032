"""The ``rectifier`` command line.

Each package contributes its own commands; they import their heavy dependencies (torch,
onnxruntime) inside the command, so ``rectifier --help`` and ``rectifier serve`` stay
fast and work in the torch-free serving image, where the training package is absent.
"""

from __future__ import annotations

import importlib.util
import logging

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


# Modules that add commands with ``register(app)``. A module that is not installed
# (training, and the registry's pull, in the serving image) is skipped.
COMMAND_MODULES = (
    "model.registry_cli",
    "model.explain_cli",
    "training.export_cli",
    "training.cli",
    "training.study_cli",
    "service.cli",
    "service.loadgen",
)


def _register_package_commands() -> None:
    for module in COMMAND_MODULES:
        package = module.partition(".")[0]
        if importlib.util.find_spec(package) and importlib.util.find_spec(module):
            importlib.import_module(module).register(app)


_register_package_commands()


def main() -> None:
    app()
