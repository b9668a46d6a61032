"""The trackers of one run: reached before training starts, dropped when they fail later
(see the package docstring)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.mlflow_store import TrackingStoreError
from training.tracking.mlflow_run import MlflowTracker
from training.tracking.options import TrackingOptions, TrackSpec
from training.tracking.scalars import epoch_scalars, final_scalars
from training.tracking.tensorboard_log import TensorBoardTracker
from training.tracking.tracker import RunDescription, RunStatus, Tracker

if TYPE_CHECKING:
    from training.diagnostics import LayerStats

log = logging.getLogger(__name__)


class TrackingUnavailable(RuntimeError):
    """A requested tracker cannot be used; raised before training starts."""


def make_tracker(spec: TrackSpec, options: TrackingOptions) -> Tracker:
    if spec.kind == "mlflow":
        return MlflowTracker(spec.target, options.mlflow_parent_run_id)
    return TensorBoardTracker(spec.target)


@dataclass
class Tracking:
    """The trackers of one run. A tracker that fails mid-run is reported once and dropped."""

    trackers: list[Tracker] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @classmethod
    def connect(cls, options: TrackingOptions) -> Tracking:
        """Reach every tracker now, before any training; see the package docstring."""
        trackers: list[Tracker] = []
        for spec in options.specs:
            tracker = make_tracker(spec, options)
            try:
                tracker.connect()
            except TrackingStoreError as exc:
                if not options.optional:
                    raise TrackingUnavailable(
                        f"{exc}; fix it, or add --track-optional to train without {spec.kind}"
                    ) from exc
                log.warning("tracking: %s; training without %s (--track-optional)", exc, spec.kind)
                continue
            trackers.append(tracker)
        return cls(trackers)

    @property
    def wants_activation_values(self) -> bool:
        """TensorBoard histograms need activation values, not just their statistics."""
        return any(t.kind == "tensorboard" for t in self.trackers)

    def mlflow_run_id(self) -> str | None:
        for tracker in self.trackers:
            if isinstance(tracker, MlflowTracker):
                return tracker.run_id
        return None

    def _each(self, doing: str, call: Callable[[Tracker], None]) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as exc:  # a tracker must never stop training
                self.trackers.remove(tracker)
                message = f"{tracker.kind} stopped while {doing}: {first_line(exc)}"
                self.failures.append(message)
                log.warning(
                    "tracking: %s; training goes on without it, the run folder is complete",
                    message,
                )
                _end_quietly(tracker)

    def start(self, run: RunDescription) -> None:
        self._each("starting the run", lambda t: t.start(run))

    def log_epoch(
        self,
        epoch: int,
        record: Mapping[str, Any],
        layers: list[LayerStats],
        activations: dict[str, np.ndarray] | None = None,
    ) -> None:
        scalars = epoch_scalars(record, layers)
        values = activations or {}
        self._each(f"logging epoch {epoch}", lambda t: t.log_epoch(epoch, scalars, values))

    def log_final(
        self, epoch: int, test: Mapping[str, float], layers: list[LayerStats], files: list[Path]
    ) -> None:
        scalars = final_scalars(test, layers)
        existing = [path for path in files if path.is_file()]
        self._each("logging the test results", lambda t: t.log_final(epoch, scalars, existing))

    def end(self, status: RunStatus) -> None:
        self._each("closing the run", lambda t: t.end(status))


def _end_quietly(tracker: Tracker) -> None:
    try:
        tracker.end("FAILED")
    except Exception:  # already broken: the first error was reported
        log.debug("tracking: %s did not close cleanly", tracker.kind, exc_info=True)


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
