"""One run of the activation study, as the study's tables and charts read it."""

from __future__ import annotations

from dataclasses import dataclass

from training.sweep import SweepRow


@dataclass(frozen=True)
class StudyRow:
    regime: str
    run: SweepRow
    parameters: int
    dead_per_epoch: list[dict[str, float]]  # per epoch: layer -> dead fraction (validation)


# (regime, activation) -> its runs over seeds, in study order.
Cells = dict[tuple[str, str], list[StudyRow]]
