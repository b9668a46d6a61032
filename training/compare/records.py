"""What one run of a sweep or a study records, and a study's result, as the tables and
charts read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from training.compare.plan import StudyBudget


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


@dataclass(frozen=True)
class StudyRow:
    regime: str
    run: SweepRow
    parameters: int
    dead_per_epoch: list[dict[str, float]]  # per epoch: layer -> dead fraction (validation)


# (regime, activation) -> its runs over seeds, in study order.
Cells = dict[tuple[str, str], list[StudyRow]]


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
