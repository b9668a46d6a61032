"""The MLflow tracker: one MLflow run per training run, in the store ``--track mlflow[=URI]``
names (``model.mlflow_store`` resolves it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.mlflow_store import connect, resolve_uri
from training.tracking.options import TrackerKind
from training.tracking.tracker import RunDescription, RunStatus

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

PARAMS_PER_BATCH = 100  # MLflow's log_batch limit


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
