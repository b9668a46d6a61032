"""One ``rectifier predict`` run: check every flag, then hand the work to an engine.

The checks come first and in this order, so nothing is decoded or written before they
pass: the output's format, the sources, the model (a session made as ``serve`` makes
it, on ``--device``), then the output's folder (``OutputSink.open``, which also reads
back what ``--resume`` continues from).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.cam_file import ExplainError, resolve_model_file
from model.card import CardError
from model.trust import TrustError
from service.batch.errors import PredictUsageError
from service.batch.output import OutputSink, columns_for, output_format, run_metadata
from service.batch.predictor import BatchPredictor, PredictorConfig
from service.batch.report import Summary
from service.batch.sources import SourceError, WorkItem, expand_sources
from service.batch.video import FrameSelection, frame_estimate
from service.inference.providers import ModelFileError, ProviderError
from service.plumbing.settings import SettingsError


@dataclass(frozen=True)
class PredictRequest:
    sources: list[str]
    model: Path
    out: Path
    batch_size: int | None = None
    device: str | None = None
    threads: int | None = None
    top_k: int | None = None
    all_frames: bool = False
    every: int = 1
    fps: float | None = None
    resume: bool = False
    chunk_rows: int = 4096
    engine: str = "local"
    ray_address: str | None = None
    actors: int = 2
    actor_cpus: float = 1.0
    actor_gpus: float = 0.0


def run_predict(request: PredictRequest, echo: Callable[[str], None]) -> Summary:
    """Check, predict, write; ``PredictUsageError`` (naming the flag) before any work."""
    output_format(request.out)
    try:
        items = expand_sources(request.sources)
    except SourceError as exc:
        raise PredictUsageError(str(exc), "SOURCE") from exc
    check_dependencies(items, request)
    config = PredictorConfig(
        model_file=str(_model_file(request.model)),
        device=request.device,
        intra_op_threads=request.threads,
        batch_size=request.batch_size,
        top_k=request.top_k,
        all_frames=request.all_frames,
        selection=FrameSelection(every=request.every, fps=request.fps),
    )
    predictor = open_predictor(config)
    sink = OutputSink(request.out, run_metadata(predictor.card), columns_for(predictor.card))
    done = sink.open(request.resume)
    remaining = done.remaining(items)
    summary = Summary(resumed_rows=done.rows)
    echo(
        f"predicting {len(remaining)} of {len(items)} files with {predictor.card.name} "
        f"version {predictor.card.version} on {', '.join(predictor.providers)} "
        f"({request.engine} engine, batch {predictor.batch_size}) into {request.out}"
    )
    total = _total(remaining, config.selection)
    if request.engine == "ray":
        from service.batch.ray_engine import RayOptions, run_ray

        batch_size = predictor.batch_size
        predictor.close()  # each actor opens its own session
        del predictor
        options = RayOptions(
            request.ray_address, request.actors, request.actor_cpus, request.actor_gpus
        )
        run_ray(
            remaining,
            config,
            sink,
            options,
            batch_size=batch_size,
            chunk_rows=request.chunk_rows,
            total=total,
            summary=summary,
        )
    else:
        from service.batch.local import run_local

        try:
            run_local(
                remaining,
                predictor,
                sink,
                chunk_rows=request.chunk_rows,
                total=total,
                summary=summary,
            )
        finally:
            predictor.close()
    for line in summary.lines():
        echo(line)
    echo(f"wrote {sink.rows_written} rows to {request.out}")
    return summary


def check_dependencies(items: list[WorkItem], request: PredictRequest) -> None:
    """The optional libraries this run needs, each missing one named with its extra."""
    needs = []
    if output_format(request.out) == "parquet" or request.engine == "ray":
        needs.append(("pyarrow", "batch", "--out", "Parquet output and --engine ray need pyarrow"))
    if any(item.video for item in items):
        needs.append(("av", "batch", "SOURCE", "video input needs PyAV"))
    if request.engine == "ray":
        needs.append(("ray.data", "ray", "--engine", "--engine ray needs Ray Data"))
    for module, extra, param, what in needs:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise PredictUsageError(
                f"{what}, which is not installed here: pip install 'rectifier[{extra}]'", param
            ) from exc


def _model_file(model: Path) -> Path:
    try:
        return resolve_model_file(model)
    except ExplainError as exc:
        raise PredictUsageError(str(exc), "--model") from exc


def open_predictor(config: PredictorConfig) -> BatchPredictor:
    """The predictor, with every way its flags can be wrong named."""
    try:
        return BatchPredictor(config)
    except SettingsError as exc:
        raise PredictUsageError(str(exc), "--device/--threads") from exc
    except ProviderError as exc:
        raise PredictUsageError(str(exc), "--device") from exc
    except (ModelFileError, CardError, TrustError) as exc:
        raise PredictUsageError(f"{config.model_file}: {exc}", "--model") from exc


def _total(items: list[WorkItem], selection: FrameSelection) -> int | None:
    """Images and frames to come, for the progress bar (None when a video cannot say)."""
    total = 0
    for item in items:
        if not item.video:
            total += 1
            continue
        frames = frame_estimate(item.path, selection)
        if frames is None:
            return None
        total += max(0, frames - len(item.skip_frames))
    return total
