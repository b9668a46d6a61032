"""Experiment tracking for training runs: MLflow and TensorBoard (``--track``).

``--track mlflow[=URI]`` logs to an MLflow store (``model.mlflow_store`` resolves the URI;
the default is a local SQLite file, no server), ``--track tensorboard[=DIR]`` writes event
files (default: ``RUN/tensorboard``, so ``tensorboard --logdir runs`` shows every run).
Both get the same scalars per epoch (losses, accuracy, AUC, learning rate, throughput, dead
fraction and sparsity overall and per layer) and the test figures at the end; MLflow also
gets every resolved training option as a param, tags for dataset, architecture and
activation, and the plots and report as artifacts; TensorBoard gets a histogram of each
activation layer's inputs per epoch, where dying units show as mass piling up below zero.

Faults: ``Tracking.connect`` reaches every tracker before training starts and raises
``TrackingUnavailable`` when one cannot be used (``optional``: warns once and trains without
it). A tracker that fails later is reported once and dropped: training, checkpoints and the
run folder never depend on it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from model.mlflow_store import (
    DEFAULT_URI_HELP,
    TrackingStoreError,
    connect,
    install_hint,
    resolve_uri,
)
from training.run_folder import RunFolder

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from torch.utils.tensorboard import SummaryWriter

    from training.diagnostics import LayerStats

log = logging.getLogger(__name__)

TrackerKind = Literal["mlflow", "tensorboard"]
TRACKERS: tuple[TrackerKind, ...] = ("mlflow", "tensorboard")
TRACK_HELP = (
    f"Log the run to mlflow[=URI] (default: {DEFAULT_URI_HELP}) "
    "and/or tensorboard[=DIR] (default: RUN/tensorboard). Repeatable."
)
PARAMS_PER_BATCH = 100  # MLflow's log_batch limit
RunStatus = Literal["FINISHED", "FAILED", "KILLED"]


class TrackingError(ValueError):
    """A ``--track`` value is malformed."""


class TrackingUnavailable(RuntimeError):
    """A requested tracker cannot be used; raised before training starts."""


@dataclass(frozen=True)
class TrackSpec:
    kind: TrackerKind
    target: str | None = None  # MLflow URI or TensorBoard folder


@dataclass(frozen=True)
class TrackingOptions:
    specs: tuple[TrackSpec, ...] = ()
    optional: bool = False
    mlflow_parent_run_id: str | None = None  # a sweep's parent run

    def __bool__(self) -> bool:
        return bool(self.specs)


def parse_track(values: Iterable[str]) -> tuple[TrackSpec, ...]:
    """``["mlflow", "tensorboard=logs"]`` -> specs; each kind at most once."""
    specs: dict[str, TrackSpec] = {}
    for value in values:
        kind, sep, target = value.partition("=")
        if kind not in TRACKERS:
            raise TrackingError(
                f"{value!r}: choose mlflow, mlflow=URI, tensorboard or tensorboard=DIR"
            )
        if sep and not target:
            raise TrackingError(f"{value!r}: give a target after '=' or drop the '='")
        if kind in specs:
            raise TrackingError(f"{kind} is given twice; name each tracker once")
        specs[kind] = TrackSpec(kind, target or None)
    return tuple(specs.values())


@dataclass(frozen=True)
class RunDescription:
    """What a tracker records about a run before its first epoch."""

    name: str
    run_dir: Path
    params: dict[str, str]
    tags: dict[str, str]


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested options (``arch_options``) become ``arch_options.width``; values strings."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def epoch_scalars(record: Mapping[str, Any], layers: list[LayerStats]) -> dict[str, float]:
    """The numbers of one epoch record plus dead fraction and sparsity per layer.

    Undefined values (an AUC on a one-class split) are left out rather than logged as NaN,
    which breaks the trackers' charts.
    """
    scalars = {k: float(v) for k, v in record.items() if k != "epoch" and _finite(v)}
    scalars.update(layer_scalars(layers))
    return scalars


def layer_scalars(layers: list[LayerStats], prefix: str = "") -> dict[str, float]:
    scalars = {}
    for stats in layers:
        for metric in ("dead_fraction", "sparsity"):
            value = getattr(stats, metric)
            if _finite(value):
                scalars[f"{prefix}{metric}/{stats.layer}"] = float(value)
    return scalars


def final_scalars(test: Mapping[str, float], layers: list[LayerStats]) -> dict[str, float]:
    scalars = {f"test_{k}": float(v) for k, v in test.items() if _finite(v)}
    scalars.update(layer_scalars(layers, "test_"))
    return scalars


class Tracker(Protocol):
    kind: TrackerKind

    def connect(self) -> None: ...
    def start(self, run: RunDescription) -> None: ...
    def log_epoch(
        self, step: int, scalars: dict[str, float], activations: dict[str, np.ndarray]
    ) -> None: ...
    def log_final(self, step: int, scalars: dict[str, float], files: list[Path]) -> None: ...
    def end(self, status: RunStatus) -> None: ...


class MlflowTracker:
    kind: TrackerKind = "mlflow"

    def __init__(self, uri: str | None, parent_run_id: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        self.parent_run_id = parent_run_id
        self._client: MlflowClient | None = None
        self.experiment_id = ""
        self.run_id: str | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            raise RuntimeError("MlflowTracker.connect() was not called")
        return self._client

    def connect(self) -> None:
        self._client, self.experiment_id = connect(self.uri)

    def start(self, run: RunDescription) -> None:
        from mlflow.entities import Param
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {**run.tags, "run_dir": str(run.run_dir.resolve())}
        if self.parent_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = self.parent_run_id
        created = self.client.create_run(self.experiment_id, run_name=run.name, tags=tags)
        self.run_id = created.info.run_id
        params = [Param(k, v) for k, v in run.params.items()]
        for first in range(0, len(params), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[first : first + PARAMS_PER_BATCH])
        log.info("MLflow: run %s (%s) in %s", run.name, self.run_id, self.uri)

    def _log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in scalars.items()]
        self.client.log_batch(self._run(), metrics=metrics)

    def _run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("MlflowTracker.start() was not called")
        return self.run_id

    def log_epoch(
        self, step: int, scalars: dict[str, float], activations: dict[str, np.ndarray]
    ) -> None:
        self._log_scalars(step, scalars)

    def log_final(self, step: int, scalars: dict[str, float], files: list[Path]) -> None:
        self._log_scalars(step, scalars)
        for path in files:
            self.client.log_artifact(self._run(), str(path))

    def end(self, status: RunStatus) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)


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
        """Reach every tracker now, before any training; see the module docstring."""
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
                message = f"{tracker.kind} stopped while {doing}: {_first_line(exc)}"
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
            log.warning("tracking: no MLflow parent run for the sweep: %s", _first_line(exc))
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
            log.warning("tracking: the sweep's MLflow parent run: %s", _first_line(exc))


def _without(specs: tuple[TrackSpec, ...], kind: TrackerKind) -> tuple[TrackSpec, ...]:
    return tuple(s for s in specs if s.kind != kind)
