"""The layout of a training run's folder; every other module asks this one for its paths.

::

    RUN/config.yaml            the resolved TrainConfig (``rectifier train --config`` reads it)
    RUN/best.pt, RUN/last.pt   best-validation weights; full training state for ``--resume``
    RUN/metrics.json           per-epoch records and the final test figures
    RUN/report.md              the same as tables, with the plots
    RUN/*.png                  learning curves, confusion matrix or per-label AUC, dead units,
                               the reliability diagram and OOD score histograms
    RUN/ood.md, RUN/ood.json   ``rectifier evaluate-ood``: the OOD table and its figures
    RUN/tensorboard/           event files of ``--track tensorboard`` (no folder given)

Torch-free (the CLI resolves ``--resume`` and ``export RUN`` with it before importing torch).
Files are written atomically, so an interrupted run never leaves half a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from model.files import write_atomically

Plot = Literal[
    "learning_curves",
    "confusion_matrix",
    "label_auc",
    "dead_units",
    "reliability",
    "ood_scores",
    "ood_reliability",
]

CONFIG = "config.yaml"
BEST = "best.pt"
LAST = "last.pt"
METRICS = "metrics.json"
REPORT = "report.md"
OOD_REPORT = "ood.md"
OOD_METRICS = "ood.json"
TENSORBOARD = "tensorboard"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @classmethod
    def create(cls, parent: str | Path, name: str) -> RunFolder:
        """A new, empty folder ``parent/name``; ``name-2``, ``name-3``... when it exists."""
        base = Path(parent) / name
        candidate, n = base, 1
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")
        candidate.mkdir(parents=True)
        return cls(candidate)

    @staticmethod
    def is_run(path: Path) -> bool:
        """Whether ``path`` is a run folder (it records its config)."""
        return (path / CONFIG).is_file()

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def ood_report(self) -> Path:
        return self.path / OOD_REPORT

    @property
    def ood_metrics(self) -> Path:
        return self.path / OOD_METRICS

    @property
    def tensorboard(self) -> Path:
        """TensorBoard's event files, when the run is tracked there without a folder."""
        return self.path / TENSORBOARD

    def plot(self, name: Plot) -> Path:
        return self.path / f"{name}.png"

    def reports(self) -> list[Path]:
        """The config, metrics, report and plots the run has written (not the checkpoints)."""
        plots = [self.plot(name) for name in get_args(Plot)]
        files = (self.config, self.metrics, self.report, self.ood_report, self.ood_metrics, *plots)
        return [p for p in files if p.is_file()]

    def recorded_config(self) -> dict[str, Any]:
        """The config the run recorded, as a mapping; empty when there is none."""
        if not self.config.is_file():
            return {}
        return yaml.safe_load(self.config.read_text()) or {}

    def write_config(self, values: dict[str, Any]) -> Path:
        return self.write_text(self.config, yaml.safe_dump(values, sort_keys=False))

    def write_text(self, path: Path, text: str) -> Path:
        return write_atomically(path, lambda handle: handle.write(text.encode()))


def checkpoint_in(path: Path, which: Literal["best", "last"] = "best") -> Path:
    """A checkpoint argument: a run folder means its ``best.pt`` (or ``last.pt``)."""
    if not path.is_dir():
        return path
    folder = RunFolder(path)
    return folder.best if which == "best" else folder.last
