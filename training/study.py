"""The activation study: what the choice of ReLU variant does, measured on offline data.

``rectifier study`` trains the same network once per (regime, activation, seed) on data
generated offline (synthetic traffic signs by default), each run through the sweep's
``run_one`` (train, test, export to ONNX, time in onnxruntime), and writes into one folder:

- ``study.json``: every run with its parameter count and its dead-unit fraction per layer
  per epoch (on the validation split, as the run recorded it);
- ``study.md``: the tables (mean ± std over seeds) that docs/activations.md quotes;
- ``dead_per_epoch.png``, ``dead_per_layer.png``, ``outcomes.png``: the charts.

A *regime* is a training setting: the training default, and SGD with a learning rate high
enough to push ReLU units into the dead zone (the dying-ReLU effect users ask about). The
default ``StudyBudget`` is sized to finish in a few minutes on a quiet 2-core CPU box.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.architectures import count_parameters
from model.checkpoint import load_checkpoint
from model.files import write_atomically
from training.artifacts import json_safe
from training.run_folder import RunFolder
from training.study_plan import REGIMES, StudyBudget
from training.study_plots import dead_per_epoch_plot, dead_per_layer_plot, outcomes_plot
from training.study_records import Cells, StudyRow
from training.sweep import SweepRow, _mean_std, run_one

log = logging.getLogger(__name__)

SUMMARY_FILES = (
    "study.md",
    "study.json",
    *(f"{c}.png" for c in ("dead_per_epoch", "dead_per_layer", "outcomes")),
)


@dataclass
class StudyResult:
    folder: Path
    budget: StudyBudget
    rows: list[StudyRow] = field(default_factory=list)
    interrupted: bool = False

    @property
    def cells(self) -> Cells:
        """(regime, activation) -> its runs over seeds, in study order."""
        grouped: Cells = {}
        for row in self.rows:
            grouped.setdefault((row.regime, row.run.activation), []).append(row)
        return grouped


def run_study(budget: StudyBudget, out: Path) -> StudyResult:
    """Train every (regime, activation, seed) and write the tables and charts into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    result = StudyResult(out, budget)
    for regime_name in budget.regimes:
        regime = REGIMES[regime_name]
        base = budget.base_config(regime)
        for activation in budget.activations:
            for seed in range(budget.seeds):
                log.info("study: %s, %s, seed %d", regime.name, activation, seed)
                row = run_one(base, activation, seed, out / regime.name)
                if row is None:
                    log.warning("study interrupted; writing the results so far")
                    result.interrupted = True
                    write_study(result)
                    return result
                result.rows.append(_study_row(regime.name, row))
                write_study(result)  # keep the tables current as runs finish
    return result


def _study_row(regime: str, row: SweepRow) -> StudyRow:
    run_folder = RunFolder(Path(row.run_dir))
    history = json.loads(run_folder.metrics.read_text())["epochs"]
    model = load_checkpoint(run_folder.best).model
    return StudyRow(
        regime=regime,
        run=row,
        parameters=count_parameters(model),
        dead_per_epoch=[epoch["dead_per_layer"] for epoch in history],
    )


def write_study(result: StudyResult) -> None:
    folder = result.folder
    payload: dict[str, Any] = {
        "budget": asdict(result.budget),
        "regimes": {name: asdict(REGIMES[name]) for name in result.budget.regimes},
        "completed": not result.interrupted,
        "runs": [asdict(row) for row in result.rows],
    }
    _write_text(folder / "study.json", json.dumps(json_safe(payload), indent=2))
    _write_text(folder / "study.md", render_study(result))
    if result.rows:
        titles = {name: f"{name}: {r.summary}" for name, r in REGIMES.items()}
        cells = result.cells
        dead_per_epoch_plot(cells, titles, folder / "dead_per_epoch.png")
        dead_per_layer_plot(cells, titles, folder / "dead_per_layer.png")
        outcomes_plot(cells, folder / "outcomes.png")


def copy_summary(result: StudyResult, target: Path) -> list[Path]:
    """Copy the tables, the JSON and the charts (not the runs) into ``target``."""
    copied = []
    for name in SUMMARY_FILES:
        source = result.folder / name
        if source.exists():
            copied.append(_write_bytes(target / name, source.read_bytes()))
    return copied


def _write_bytes(path: Path, data: bytes) -> Path:
    return write_atomically(path, lambda handle: handle.write(data))


def _write_text(path: Path, text: str) -> Path:
    return _write_bytes(path, text.encode())


# --- tables -----------------------------------------------------------------------------

_METRICS = ("test_acc", "dead_fraction", "sparsity", "train_seconds", "latency_ms")


def _pm(value: tuple[float, float], scale: float = 1.0, digits: int = 3) -> str:
    mean, std = value
    if math.isnan(mean):
        return "n/a"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def dead_per_layer(rows: Sequence[StudyRow]) -> dict[str, tuple[float, float]]:
    """Layer -> mean and std over seeds of its dead fraction after the last epoch."""
    return {
        layer: _mean_std([row.dead_per_epoch[-1][layer] for row in rows])
        for layer in rows[0].dead_per_epoch[-1]
    }


def render_study(result: StudyResult) -> str:
    """The markdown tables: outcomes per (regime, activation), then dead units per layer."""
    budget, cells = result.budget, result.cells
    lines = [
        "### Outcomes per regime and activation",
        "",
        f"Budget: {budget.describe()}. Mean ± std over seeds {list(range(budget.seeds))}. "
        "Dead units: channels whose input was never positive on the test split (Maxout: "
        "pieces that never won), after the last epoch, weighted by layer size. Sparsity: "
        "fraction of activation outputs <= 0. Latency: onnxruntime, CPU, batch 1, one "
        "thread, median of 50 runs.",
        "",
        "| regime | activation | parameters | test acc | dead units (%) | sparsity (%) "
        "| train time (s) | ONNX latency (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (regime, activation), rows in cells.items():
        metric = {m: _mean_std([getattr(r.run, m) for r in rows]) for m in _METRICS}
        lines.append(
            f"| {regime} | {activation} | {rows[0].parameters:,} | {_pm(metric['test_acc'])} "
            f"| {_pm(metric['dead_fraction'], 100, 1)} | {_pm(metric['sparsity'], 100, 1)} "
            f"| {_pm(metric['train_seconds'], 1, 1)} | {_pm(metric['latency_ms'], 1, 3)} |"
        )
    for regime in dict.fromkeys(row.regime for row in result.rows):
        regime_cells = {a: rows for (g, a), rows in cells.items() if g == regime}
        layers = list(dead_per_layer(next(iter(regime_cells.values()))))
        lines += [
            "",
            f"### Dead units per layer after the last epoch, {regime} ({REGIMES[regime].summary})",
            "",
            "Validation split; layers in network order (conv blocks of simple_cnn).",
            "",
            "| activation | " + " | ".join(f"layer {n + 1}" for n in range(len(layers))) + " |",
            "|---|" + "---|" * len(layers),
        ]
        for activation, rows in regime_cells.items():
            per_layer = dead_per_layer(rows)
            cells_text = " | ".join(_pm(per_layer[layer], 100, 0) for layer in layers)
            lines.append(f"| {activation} | {cells_text} |")
    return "\n".join(lines) + "\n"
