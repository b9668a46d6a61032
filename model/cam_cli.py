"""``rectifier explain IMAGE --model models/NAME``: the class-activation overlay PNG.

Torch-free (onnxruntime, Pillow, NumPy), so it works in the serving image as well; the core
is ``model/cam_file.py``.
"""

from __future__ import annotations

from pathlib import Path

import typer


def explain_command(
    image: Path = typer.Argument(..., help="The image file to explain."),
    model: Path = typer.Option(
        ...,
        "--model",
        help="A model folder (models/NAME: newest version), a version folder or a model.onnx file.",
    ),
    label: str | None = typer.Option(
        None, "--label", help="The class to explain (default: the predicted one)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Where to write the overlay PNG (default: IMAGE.cam.png beside it)."
    ),
    opacity: float = typer.Option(0.5, "--opacity", min=0.0, max=1.0, help="Heatmap opacity."),
) -> None:
    """Write a class-activation heatmap overlay of IMAGE as a PNG next to it."""
    from model.cam_file import ExplainError, explain_file

    if not image.is_file():
        raise typer.BadParameter(f"{image} is not a file", param_hint="IMAGE")
    try:
        result = explain_file(image, model, label=label, out=out, opacity=opacity)
    except ExplainError as exc:
        hint = {"image": "IMAGE", "model": "--model", "label": "--label"}[exc.param]
        raise typer.BadParameter(str(exc), param_hint=hint) from exc
    height, width = result.grid.shape
    typer.echo(
        f"wrote {result.overlay_path} ({result.label}, p={result.probability:.4f}; "
        f"{width}x{height} class-activation map of {result.card.name} "
        f"version {result.card.version})"
    )


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_command)
