"""A sweep's tracking: one MLflow parent run over the sweep's runs, and a TensorBoard
folder per sweep."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from model.mlflow_store import TrackingStoreError
from training.tracking.mlflow_run import MlflowTracker
from training.tracking.options import TrackerKind, TrackingOptions, TrackSpec
from training.tracking.run_tracking import TrackingUnavailable, first_line
from training.tracking.tracker import RunDescription, RunStatus

log = logging.getLogger(__name__)


@dataclass
class SweepTracking:
    """A sweep's parent MLflow run, under which every run of the sweep is a child run, and
    its TensorBoard folder, under which each run has its own."""

    options: TrackingOptions
    parent: MlflowTracker | None = None

    @classmethod
    def connect(cls, options: TrackingOptions) -> SweepTracking:
        """Reach MLflow before the sweep starts (see ``Tracking.connect``)."""
        spec = next((s for s in options.specs if s.kind == "mlflow"), None)
        if spec is None:
            return cls(options)
        parent = MlflowTracker(spec.target)
        try:
            parent.connect()
        except TrackingStoreError as exc:
            if not options.optional:
                raise TrackingUnavailable(
                    f"{exc}; fix it, or add --track-optional to sweep without mlflow"
                ) from exc
            log.warning("tracking: %s; the sweep runs without MLflow (--track-optional)", exc)
            return cls(replace(options, specs=_without(options.specs, "mlflow")))
        return cls(options, parent)

    def begin(self, name: str, folder: Path, params: dict[str, str]) -> None:
        if self.parent is None:
            return
        try:
            self.parent.start(RunDescription(name, folder, params, {"kind": "sweep"}))
        except Exception as exc:
            log.warning("tracking: no MLflow parent run for the sweep: %s", first_line(exc))
            self.parent = None

    def run_options(self, sweep_name: str) -> TrackingOptions:
        """The options each run of the sweep tracks with."""
        specs = tuple(
            replace(s, target=str(Path(s.target) / sweep_name))
            if s.kind == "tensorboard" and s.target
            else s
            for s in self.options.specs
        )
        parent_id = self.parent.run_id if self.parent else None
        return replace(self.options, specs=specs, mlflow_parent_run_id=parent_id)

    def finish(self, files: list[Path], status: RunStatus) -> None:
        if self.parent is None or self.parent.run_id is None:
            return
        try:
            self.parent.log_final(0, {}, [p for p in files if p.is_file()])
            self.parent.end(status)
        except Exception as exc:
            log.warning("tracking: the sweep's MLflow parent run: %s", first_line(exc))


def _without(specs: tuple[TrackSpec, ...], kind: TrackerKind) -> tuple[TrackSpec, ...]:
    return tuple(s for s in specs if s.kind != kind)
