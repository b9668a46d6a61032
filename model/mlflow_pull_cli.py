"""``rectifier pull``: a registered MLflow model version into the model repository.

Not in the serving image (it has no mlflow): ``model.cli`` skips this module there.
"""

from __future__ import annotations

from pathlib import Path

import typer

from model.layout import DEFAULT_ROOT
from model.mlflow_store import TRACKING_URI_HELP


def pull_command(
    model_uri: str = typer.Argument(
        ..., help="models:/NAME/VERSION, models:/NAME/ALIAS or models:/NAME@ALIAS."
    ),
    out: Path = typer.Option(DEFAULT_ROOT, "--out", help="The model repository folder."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=TRACKING_URI_HELP),
) -> None:
    """Write a registered model version into OUT/NAME/VERSION/model.onnx for `rectifier serve`."""
    from model.mlflow_registry import RegistryError, pull_model

    try:
        pulled = pull_model(model_uri, out, tracking_uri)
    except RegistryError as exc:
        raise typer.BadParameter(str(exc), param_hint="MODEL_URI") from exc
    state = "already present" if pulled.already_present else "wrote"
    typer.echo(f"{state} {pulled.path} ({pulled.name} version {pulled.version})")


def register(app: typer.Typer) -> None:
    app.command("pull")(pull_command)
