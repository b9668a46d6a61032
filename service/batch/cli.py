"""``rectifier predict SOURCE... --model models/NAME[/VERSION] --out FILE``.

Everything that can be wrong with the flags is found before any work: an output that
cannot be written, an unknown model, an empty source, a device this onnxruntime lacks;
each fails with exit 2 and a message naming its flag. Bad *input* never stops a run: it
becomes a row with its ``error``. The heavy dependencies are imported inside the command,
so ``rectifier --help`` stays fast and a missing one names the extra that brings it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

ENGINES = ("local", "ray")
DEFAULT_CHUNK_ROWS = 4096


def predict_command(
    sources: list[str] = typer.Argument(
        ...,
        metavar="SOURCE...",
        help="Image, DICOM or video files, folders (recursive), globs, or .txt/.csv lists.",
    ),
    model: Path = typer.Option(
        ...,
        "--model",
        help="A model folder (models/NAME: newest version), a version folder or model.onnx.",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output file: .parquet, .csv or .jsonl (the extension decides)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Images per inference batch (default: the server's)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="Execution providers, as for serve (auto, cpu, cuda, ...)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="onnxruntime intra-op threads (default: every core)."
    ),
    top_k: int | None = typer.Option(None, "--top-k", min=1, help="Labels in each row's top_k."),
    all_frames: bool = typer.Option(
        False, "--all-frames", help="Multi-frame images and DICOM: one row per frame."
    ),
    every: int = typer.Option(1, "--every", min=1, help="Video: classify every Nth frame."),
    fps: float | None = typer.Option(
        None, "--fps", min=0.001, help="Video: classify about F frames per second."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run into the same --out."
    ),
    chunk_rows: int = typer.Option(
        DEFAULT_CHUNK_ROWS, "--chunk-rows", min=1, help="Rows per part written to disk."
    ),
    engine: str = typer.Option("local", "--engine", help=f"One of {', '.join(ENGINES)}."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="--engine ray: a cluster to join (auto, host:port)."
    ),
    actors: int = typer.Option(2, "--actors", min=1, help="--engine ray: actors in the pool."),
    actor_cpus: float = typer.Option(1.0, "--actor-cpus", min=0.0, help="CPUs per actor."),
    actor_gpus: float = typer.Option(0.0, "--actor-gpus", min=0.0, help="GPUs per actor."),
) -> None:
    """Predict every image, DICOM frame or video frame of SOURCE... into one table."""
    if engine not in ENGINES:
        raise typer.BadParameter(f"choose one of {', '.join(ENGINES)}", param_hint="--engine")
    if fps is not None and every != 1:
        raise typer.BadParameter("give --every or --fps, not both", param_hint="--fps")
    try:
        from service.batch.run import PredictRequest, run_predict
    except ImportError as exc:
        typer.echo(
            f"error: rectifier predict needs the 'batch' extra ({exc}): "
            "pip install 'rectifier[batch]'",
            err=True,
        )
        raise typer.Exit(2) from exc
    request = PredictRequest(
        sources=sources,
        model=model,
        out=out,
        batch_size=batch_size,
        device=device,
        threads=threads,
        top_k=top_k,
        all_frames=all_frames,
        every=every,
        fps=fps,
        resume=resume,
        chunk_rows=chunk_rows,
        engine=engine,
        ray_address=ray_address,
        actors=actors,
        actor_cpus=actor_cpus,
        actor_gpus=actor_gpus,
    )
    from service.batch.errors import PredictUsageError

    try:
        summary = run_predict(request, echo=_echo)
    except PredictUsageError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.param) from exc
    if summary.interrupted:
        typer.echo(f"interrupted: --resume continues into {out}", err=True)
        raise typer.Exit(130)


def _echo(line: Any) -> None:
    typer.echo(line, err=True)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
