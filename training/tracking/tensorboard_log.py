"""The TensorBoard tracker: event files per run, with a histogram of each activation
layer's inputs per epoch (default folder: ``RUN/tensorboard``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.mlflow_store import TrackingStoreError, install_hint
from training.run_folder import RunFolder
from training.tracking.options import TrackerKind
from training.tracking.tracker import RunDescription, RunStatus

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

log = logging.getLogger(__name__)


class TensorBoardTracker:
    kind: TrackerKind = "tensorboard"

    def __init__(self, folder: str | None) -> None:
        self.folder = Path(folder) if folder else None
        self.writer: SummaryWriter | None = None
        self.log_dir: Path | None = None

    def connect(self) -> None:
        try:
            import tensorboard  # noqa: F401  (torch's writer needs it)
        except ImportError as exc:
            raise TrackingStoreError(f"tensorboard is not installed; {install_hint()}") from exc
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrackingStoreError(f"TensorBoard cannot write {self.folder}: {exc}") from exc

    def start(self, run: RunDescription) -> None:
        from torch.utils.tensorboard import SummaryWriter

        in_run = RunFolder(run.run_dir).tensorboard
        self.log_dir = self.folder / run.name if self.folder else in_run
        self.writer = SummaryWriter(str(self.log_dir))
        table = "\n".join(f"| {k} | {v} |" for k, v in {**run.tags, **run.params}.items())
        self.writer.add_text("config", "| option | value |\n|---|---|\n" + table)
        self.writer.flush()
        log.info("TensorBoard: writing %s", self.log_dir)

    def _writer(self) -> SummaryWriter:
        if self.writer is None:
            raise RuntimeError("TensorBoardTracker.start() was not called")
        return self.writer

    def log_epoch(
        self, step: int, scalars: dict[str, float], activations: dict[str, np.ndarray]
    ) -> None:
        writer = self._writer()
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, step)
        for layer, values in activations.items():
            if values.size:
                writer.add_histogram(f"activation_input/{layer}", values, step)
        writer.flush()  # an epoch's events are on disk even if the run dies next

    def log_final(self, step: int, scalars: dict[str, float], files: list[Path]) -> None:
        writer = self._writer()
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, step)
        writer.flush()

    def end(self, status: RunStatus) -> None:
        if self.writer is not None:
            self.writer.close()
