"""``rectifier export``: a checkpoint or a run folder into the model repository.

It lives with training because it knows run folders: ``export RUN`` exports ``RUN``'s best
checkpoint and, for int8, calibrates on the run's own dataset, which ``model.quantize`` is
handed as images. Torch is imported inside the command only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from model.layout import DEFAULT_ROOT
from model.mlflow_store import TRACKING_URI_HELP
from training.run_folder import BEST, RunFolder, checkpoint_in

if TYPE_CHECKING:
    from model.card import Trust
    from model.trust_fit import TrustImages


def export_command(
    checkpoint: Path = typer.Argument(
        ..., help=f"A checkpoint file, or a run folder (its {BEST} is exported)."
    ),
    out: Path = typer.Option(DEFAULT_ROOT, "--out", help="The model repository folder."),
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
    no_trust: bool = typer.Option(
        False,
        "--no-trust",
        help="Skip fitting the temperature and the OOD score from the run's own training and "
        "validation splits (docs/trust.md); the model then serves raw probabilities.",
    ),
) -> None:
    """Export a checkpoint to OUT/NAME/VERSION/model.onnx with its card, checked for parity."""
    from model.checkpoint import CheckpointError
    from model.export import ExportError, export_checkpoint

    if tracking_uri is not None and register is None:
        raise typer.BadParameter(
            "only means something with --register NAME", param_hint="--tracking-uri"
        )
    path = checkpoint_in(checkpoint)
    if quantize is not None or fp16:
        calibration = calibration or (checkpoint if checkpoint.is_dir() else None)
        line, written = export_reduced(path, out, name, version, quantize, calibration, fp16)
        typer.echo(line)
    else:
        try:
            trust = None if no_trust else trust_images(path)
            result = export_checkpoint(path, out, name, version=version, trust=trust)
        except (CheckpointError, ExportError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="CHECKPOINT") from exc
        written = result.path
        typer.echo(
            f"wrote {result.path} (max abs diff vs PyTorch {result.parity.max_abs_diff:.2e}, "
            f"top-1 agreement {result.parity.top1_agreement:.0%})"
        )
        if result.card.trust is not None:
            typer.echo(trust_line(result.card.trust))
    if register is not None:
        register_export(written, register, tracking_uri)


def trust_images(checkpoint: Path) -> TrustImages | None:
    """The run's own images, or None (with a warning) for a checkpoint outside a run."""
    from model.checkpoint import load_checkpoint
    from training.trust_data import run_of, run_trust_images

    run = run_of(checkpoint)
    if run is None:
        typer.echo(
            f"warning: {checkpoint} is not in a run folder: exported without calibration and "
            "OOD score (export the run folder to fit them)",
            err=True,
        )
        return None
    config = load_checkpoint(checkpoint).config
    if config.task == "multilabel":
        typer.echo("note: multilabel models are exported without calibration and OOD score")
        return None
    return run_trust_images(run, config.preprocessing)


def trust_line(trust: Trust) -> str:
    c = trust.calibration
    line = (
        f"calibrated on {c.images} validation images: T = {c.temperature:.3f}"
        f"{' (separable split: kept >= 1)' if c.separable else ''}, "
        f"ECE {c.before.ece:.4f} -> {c.after.ece:.4f}, NLL {c.before.nll:.4f} -> {c.after.nll:.4f}"
    )
    if trust.ood is not None:
        line += (
            f"; OOD score {trust.ood.scorer}, threshold {trust.ood.threshold:.4g} "
            f"({trust.ood.tpr:.0%} of validation images under it)"
        )
    return line


def register_export(path: Path, name: str, tracking_uri: str | None) -> None:
    from model.mlflow_registry import RegistryError, register_onnx

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


def export_reduced(
    checkpoint: Path,
    out: Path,
    name: str,
    version: int | None,
    quantize: str | None,
    calibration: Path | None,
    fp16: bool,
) -> tuple[str, Path]:
    """``--quantize int8 | --fp16``: bad input becomes a typer error naming the option;
    returns the line to print and the file written."""
    from model.checkpoint import CheckpointError, load_checkpoint
    from model.export import ExportError
    from model.quantize import (
        REPORT_NAME,
        ImageSet,
        Precision,
        QuantizationError,
        export_reduced_precision,
    )
    from training.calibration import run_image_set
    from training.datasets import DatasetError

    if quantize is not None and fp16:
        raise typer.BadParameter("choose one of --quantize int8 and --fp16", param_hint="--fp16")
    if quantize not in (None, "int8"):
        raise typer.BadParameter(f"{quantize!r}: only int8 is supported", param_hint="--quantize")
    precision: Precision = "fp16" if fp16 else "int8"
    if precision == "int8" and calibration is None:
        raise typer.BadParameter(
            "int8 needs a few hundred training images: a run folder, an image folder or a .npz",
            param_hint="--calibration",
        )
    try:
        ckpt = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise typer.BadParameter(str(exc), param_hint="CHECKPOINT") from exc
    images: Path | ImageSet | None = calibration
    try:
        if calibration is not None and RunFolder.is_run(calibration):
            images = run_image_set(RunFolder(calibration), ckpt.config.preprocessing)
        result = export_reduced_precision(
            ckpt, out, name, precision=precision, calibration=images, version=version
        )
    except (QuantizationError, DatasetError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--calibration") from exc
    except (ExportError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="CHECKPOINT") from exc
    report = result.report
    accuracy = (
        f", accuracy fp32 {report.accuracy_fp32:.2%} -> {precision} {report.accuracy_reduced:.2%}"
        if report.accuracy_fp32 is not None and report.accuracy_reduced is not None
        else ""
    )
    line = (
        f"wrote {result.path} ({precision}: top-1 agreement with fp32 {report.top1_agreement:.2%} "
        f"on {report.images} images{accuracy}; checked on {report.checked_on}; "
        f"report {result.path.parent / REPORT_NAME})"
    )
    return line, result.path


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
