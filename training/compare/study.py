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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from model.architectures import count_parameters
from model.checkpoint import load_checkpoint
from model.files import write_atomically
from training.artifacts import json_safe
from training.compare.plan import REGIMES, StudyBudget
from training.compare.plots import dead_per_epoch_plot, dead_per_layer_plot, outcomes_plot
from training.compare.records import StudyResult, StudyRow, SweepRow
from training.compare.sweep import run_one
from training.compare.tables import render_study_tables
from training.run_folder import RunFolder

log = logging.getLogger(__name__)

SUMMARY_FILES = (
    "study.md",
    "study.json",
    *(f"{c}.png" for c in ("dead_per_epoch", "dead_per_layer", "outcomes")),
)


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
    _write_text(folder / "study.md", render_study_tables(result))
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
