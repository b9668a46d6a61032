"""Activation sweeps: the same architecture and budget once per activation and seed.

Every run is trained, evaluated on the test split, exported to ONNX and timed in
onnxruntime; the sweep folder gets ``sweep.json``, a markdown table ``sweep.md`` (mean and
standard deviation over seeds) and a chart ``sweep.png``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from training.artifacts import json_safe
from training.config import TrainConfig
from training.tracking.options import TrackingOptions
from training.tracking.scalars import flatten_params
from training.tracking.sweep_tracking import SweepTracking
from training.tracking.tracker import RunStatus

log = logging.getLogger(__name__)

LATENCY_RUNS = 50


@dataclass(frozen=True)
class SweepRow:
    activation: str
    seed: int
    test_acc: float
    test_auc: float
    dead_fraction: float
    sparsity: float
    train_seconds: float
    latency_ms: float  # onnxruntime, batch 1, median
    run_dir: str
    model_path: str


def safe_name(activation: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", activation)


def onnx_latency_ms(path: Path, runs: int = LATENCY_RUNS) -> float:
    """Median batch-1 latency in one thread (threads would make the sweep's figures depend
    on what else the machine runs)."""
    import onnxruntime as ort

    from model.card import read_card

    card = read_card(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).standard_normal((1, *card.input_shape)).astype(np.float32)
    feed = {card.input_name: batch}
    for _ in range(5):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


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


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    if not len(array) or np.isnan(array).all():
        return math.nan, math.nan
    std = float(np.nanstd(array, ddof=1)) if np.count_nonzero(~np.isnan(array)) > 1 else 0.0
    return float(np.nanmean(array)), std


def aggregate(rows: list[SweepRow]) -> dict[str, dict[str, tuple[float, float]]]:
    """activation -> metric -> (mean, std over seeds)."""
    metrics = ("test_acc", "test_auc", "dead_fraction", "sparsity", "train_seconds", "latency_ms")
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for activation in dict.fromkeys(r.activation for r in rows):
        group = [r for r in rows if r.activation == activation]
        table[activation] = {m: _mean_std([getattr(r, m) for r in group]) for m in metrics}
    return table


def _pm(value: tuple[float, float], scale: float = 1.0, digits: int = 4) -> str:
    mean, std = value
    if math.isnan(mean):
        return "n/a"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def render_table(base: TrainConfig, rows: list[SweepRow]) -> str:
    seeds = sorted({r.seed for r in rows})
    lines = [
        f"# Activation sweep: {base.arch} on {base.data}",
        "",
        f"{base.epochs} epochs, batch {base.batch_size}, {base.optimizer} lr {base.lr:g}, "
        f"{base.img_size} px, seeds {seeds}; mean ± std over seeds. Latency: onnxruntime, "
        "CPU, batch 1, one thread, median.",
        "",
        "| activation | test ACC | test AUC | dead units (%) | sparsity (%) | train time (s) "
        "| latency (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for activation, m in aggregate(rows).items():
        lines.append(
            f"| {activation} | {_pm(m['test_acc'])} | {_pm(m['test_auc'])} "
            f"| {_pm(m['dead_fraction'], 100, 1)} | {_pm(m['sparsity'], 100, 1)} "
            f"| {_pm(m['train_seconds'], 1, 1)} | {_pm(m['latency_ms'], 1, 3)} |"
        )
    return "\n".join(lines) + "\n"


def plot_sweep(rows: list[SweepRow], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = aggregate(rows)
    names = list(table)
    x = np.arange(len(names))
    panels = (
        ("test_acc", "test ACC", 1.0),
        ("dead_fraction", "dead units (%)", 100.0),
        ("train_seconds", "training time (s)", 1.0),
        ("latency_ms", "ONNX latency (ms)", 1.0),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    for axis, (metric, title, scale) in zip(axes, panels, strict=True):
        means = [table[n][metric][0] * scale for n in names]
        stds = [table[n][metric][1] * scale for n in names]
        axis.bar(x, np.nan_to_num(means), yerr=np.nan_to_num(stds), capsize=3, color="tab:blue")
        axis.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
        if metric == "test_acc":
            finite = [m for m in means if not math.isnan(m)]
            low = min(finite, default=0.0)
            axis.set_ylim(max(0.0, low - 0.05), 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_files(folder: Path) -> tuple[Path, Path, Path]:
    """The sweep's results: ``sweep.json``, the table ``sweep.md`` and the chart."""
    return folder / "sweep.json", folder / "sweep.md", folder / "sweep.png"


def write_sweep(folder: Path, base: TrainConfig, rows: list[SweepRow]) -> None:
    payload = {"config": base.to_dict(), "runs": [asdict(r) for r in rows]}
    results, table, chart = sweep_files(folder)
    results.write_text(json.dumps(json_safe(payload), indent=2, default=str))
    table.write_text(render_table(base, rows))
    if rows:
        plot_sweep(rows, chart)
