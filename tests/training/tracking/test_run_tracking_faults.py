"""A real local MLflow tracking server that goes away in the middle of a training run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers.datasets import tiny_config
from tests.helpers.server import free_port

pytestmark = [pytest.mark.tracking, pytest.mark.slow]

SERVER_START_TIMEOUT_S = 240  # the server migrates a fresh SQLite schema on a shared box


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGKILL the server and its uvicorn worker (its own process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination", str(tmp_path / "server-artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    server = MlflowServer(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the MLflow server did not start"
            time.sleep(0.5)
        yield server
    finally:
        server.stop()
        log.close()


@dataclass
class StopServerAfterEpoch:
    """A second tracker (the ``Tracker`` protocol) that kills the server once ``epoch`` is
    logged, so the real MLflow tracker meets a dead server at the next epoch."""

    server: MlflowServer
    epoch: int
    kind: str = "server-stopper"

    def connect(self) -> None: ...
    def start(self, run: object) -> None: ...
    def log_final(self, step: int, scalars: object, files: object) -> None: ...
    def end(self, status: str) -> None: ...

    def log_epoch(self, step: int, scalars: object, activations: dict[str, np.ndarray]) -> None:
        if step == self.epoch:
            self.server.stop()


def test_server_stopped_mid_run_loses_neither_run_folder_nor_checkpoint(
    mlflow_server: MlflowServer, tmp_path: Path, data_dir: Path
) -> None:
    from model.checkpoint import load_checkpoint
    from training.run import train
    from training.run_folder import RunFolder
    from training.tracking.options import TrackingOptions, TrackSpec
    from training.tracking.run_tracking import Tracking

    config = tiny_config(
        tmp_path, data=f"imagefolder:{data_dir / 'folder'}", epochs=3, name="outlived"
    )
    tracking = Tracking.connect(TrackingOptions((TrackSpec("mlflow", mlflow_server.url),)))
    tracking.trackers.append(StopServerAfterEpoch(mlflow_server, epoch=1))  # type: ignore[arg-type]

    result = train(config, tracking=tracking)

    assert not result.interrupted
    assert len(tracking.failures) == 1
    assert tracking.failures[0].startswith("mlflow stopped while logging epoch 2")
    assert result.tracking_failures == tracking.failures
    folder = RunFolder(tmp_path / "runs" / "outlived")
    metrics = json.loads(folder.metrics.read_text())
    assert metrics["completed"] and len(metrics["epochs"]) == 3 and "test" in metrics
    assert folder.report.is_file()
    assert load_checkpoint(folder.best).metrics["test_acc"] == metrics["test"]["acc"]
    state = load_checkpoint(folder.last).training_state
    assert state is not None and state["epoch"] == 3
