"""Activation sweeps: the same architecture and budget once per activation and seed.

Every run is trained, evaluated on the test split, exported to ONNX and timed in
onnxruntime; the sweep folder gets ``sweep.json``, a markdown table ``sweep.md`` (mean and
standard deviation over seeds) and a chart ``sweep.png``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, replace
from pathlib import Path

from training.artifacts import json_safe
from training.compare.latency import onnx_latency_ms
from training.compare.plots import sweep_plot
from training.compare.records import SweepRow
from training.compare.tables import render_sweep_table
from training.config import TrainConfig
from training.tracking.options import TrackingOptions
from training.tracking.scalars import flatten_params
from training.tracking.sweep_tracking import SweepTracking
from training.tracking.tracker import RunStatus

log = logging.getLogger(__name__)


def safe_name(activation: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", activation)


def run_one(
    base: TrainConfig,
    activation: str,
    seed: int,
    folder: Path,
    tracking: TrackingOptions | None = None,
) -> SweepRow | None:
    """Train, export and time one configuration; None when the run was interrupted."""
    from model.export import export_checkpoint
    from training.run import train

    name = f"{safe_name(activation)}-s{seed}"
    config = replace(base, activation=activation, seed=seed, out=str(folder / "runs"), name=name)
    result = train(config, tracking)
    if result.interrupted:
        return None
    exported = export_checkpoint(result.best_checkpoint, folder / "models", name, version=1)
    test = result.test_metrics
    return SweepRow(
        activation=activation,
        seed=seed,
        test_acc=test["acc"],
        test_auc=test["auc"],
        dead_fraction=test["dead_fraction"],
        sparsity=test["sparsity"],
        train_seconds=result.train_seconds,
        latency_ms=onnx_latency_ms(exported.path),
        run_dir=str(result.run_dir),
        model_path=str(exported.path),
    )


def new_sweep_dir(out: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = out / f"sweep-{stamp}", 1
    while folder.exists():
        n += 1
        folder = out / f"sweep-{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def run_sweep(
    base: TrainConfig,
    activations: list[str],
    seeds: list[int],
    out: Path,
    tracking: TrackingOptions | None = None,
) -> tuple[Path, list[SweepRow]]:
    """Run every (activation, seed); stops early, keeping the table so far, on Ctrl-C.

    With MLflow tracking the runs are children of one parent run named after the sweep
    folder, which gets the sweep's table and chart at the end.
    """
    sweep_tracking = SweepTracking.connect(tracking or TrackingOptions())
    folder = new_sweep_dir(out)
    sweep_tracking.begin(folder.name, folder, flatten_params(base.to_dict()))
    run_tracking = sweep_tracking.run_options(folder.name)
    rows: list[SweepRow] = []
    status: RunStatus = "FAILED"
    try:
        for activation in activations:
            for seed in seeds:
                log.info("sweep: %s, seed %d", activation, seed)
                row = run_one(base, activation, seed, folder, run_tracking)
                if row is None:
                    log.warning("sweep interrupted; writing the results so far")
                    write_sweep(folder, base, rows)
                    status = "KILLED"
                    return folder, rows
                rows.append(row)
                write_sweep(folder, base, rows)  # keep the table current as runs finish
        status = "FINISHED"
    finally:
        sweep_tracking.finish(list(sweep_files(folder)), status)
    return folder, rows


def sweep_files(folder: Path) -> tuple[Path, Path, Path]:
    """The sweep's results: ``sweep.json``, the table ``sweep.md`` and the chart."""
    return folder / "sweep.json", folder / "sweep.md", folder / "sweep.png"


def write_sweep(folder: Path, base: TrainConfig, rows: list[SweepRow]) -> None:
    payload = {"config": base.to_dict(), "runs": [asdict(r) for r in rows]}
    results, table, chart = sweep_files(folder)
    results.write_text(json.dumps(json_safe(payload), indent=2, default=str))
    table.write_text(render_sweep_table(base, rows))
    if rows:
        sweep_plot(rows, chart)
