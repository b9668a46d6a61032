"""``rectifier study``: the activation study with its documented default budget."""

from __future__ import annotations

from pathlib import Path

import typer

from training.compare.plan import REGIMES, STUDY_ACTIVATIONS, StudyBudget

_DEFAULT = StudyBudget()


def _names(text: str, flag: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise typer.BadParameter("name at least one", param_hint=flag)
    return names


def _check_activations(names: tuple[str, ...]) -> None:
    from model.activations import ActivationSpecError, parse_activation

    for spec in names:
        try:
            parse_activation(spec)
        except ActivationSpecError as exc:
            raise typer.BadParameter(str(exc), param_hint="--activations") from exc


def _check_regimes(names: tuple[str, ...]) -> None:
    for name in names:
        if name not in REGIMES:
            raise typer.BadParameter(
                f"unknown regime {name!r}; valid choices: {', '.join(REGIMES)}",
                param_hint="--regimes",
            )


def study_command(
    out: Path = typer.Option(Path("runs/study"), "--out", help="Folder for the runs and tables."),
    report: Path | None = typer.Option(
        None, "--report", help="Also copy the tables, JSON and charts (not the runs) here."
    ),
    activations: str = typer.Option(
        ",".join(STUDY_ACTIVATIONS), "--activations", help="Comma-separated specs."
    ),
    regimes: str = typer.Option(
        ",".join(REGIMES), "--regimes", help=f"Comma-separated; from {', '.join(REGIMES)}."
    ),
    seeds: int = typer.Option(_DEFAULT.seeds, "--seeds", min=1, help="Seeds per cell: 0..N-1."),
    epochs: int = typer.Option(_DEFAULT.epochs, "--epochs", min=1),
    data: str = typer.Option(_DEFAULT.data, "--data", help="Any dataset spec train accepts."),
    data_root: Path | None = typer.Option(None, "--data-root"),
    img_size: int = typer.Option(_DEFAULT.img_size, "--img-size", min=8),
    width: int = typer.Option(_DEFAULT.width, "--width", min=1, help="simple_cnn width."),
    depth: int = typer.Option(_DEFAULT.depth, "--depth", min=1, max=6, help="simple_cnn depth."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="DataLoader workers."),
) -> None:
    """Dying ReLU, sparsity, accuracy and ONNX latency per activation, over seeds."""
    activation_names = _names(activations, "--activations")
    regime_names = _names(regimes, "--regimes")
    _check_activations(activation_names)
    _check_regimes(regime_names)
    budget = StudyBudget(
        data=data,
        data_root=str(data_root) if data_root else None,
        img_size=img_size,
        epochs=epochs,
        seeds=seeds,
        width=width,
        depth=depth,
        workers=workers,
        activations=activation_names,
        regimes=regime_names,
    )
    from training.compare.study import copy_summary, run_study
    from training.datasets import DatasetError

    try:
        result = run_study(budget, out)
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    typer.echo((result.folder / "study.md").read_text())
    typer.echo(f"study folder {result.folder}")
    if report is not None:
        for path in copy_summary(result, report):
            typer.echo(f"wrote {path}")
    if result.interrupted:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.command("study")(study_command)
