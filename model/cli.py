"""The ``rectifier`` command line.

Each package contributes its own commands; they import their heavy dependencies (torch,
onnxruntime) inside the command, so ``rectifier --help`` and ``rectifier serve`` stay
fast and work in the torch-free serving image, where the training package is absent.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

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


COMMAND_GROUP = "rectifier.commands"


def _register_package_commands() -> None:
    """Every ``register(app)`` of the ``rectifier.commands`` entry points (pyproject.toml).

    An entry point whose own module is absent (training in the serving image) is skipped;
    a missing dependency inside a module that is present is a real error and surfaces.
    """
    for entry in entry_points(group=COMMAND_GROUP):
        try:
            register = entry.load()
        except ModuleNotFoundError as exc:
            if exc.name and (entry.module == exc.name or entry.module.startswith(f"{exc.name}.")):
                continue
            raise
        register(app)


_register_package_commands()


def main() -> None:
    app()
