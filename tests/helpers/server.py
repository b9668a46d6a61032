"""Start the real server (``python -m service serve``, uvicorn) in a subprocess for tests.

    from tests.helpers.server import running_server

    with running_server(model_repo_dir, env={"RECTIFIER_MAX_QUEUE": "4"}) as server:
        httpx.get(f"{server.url}/v1/models")
        server.terminate()          # optional: SIGTERM, returns the exit status
        server.logs()               # what the server wrote (stdout and stderr)

The server listens on 127.0.0.1 on a free port. ``running_server`` returns once ``/readyz``
answers 200 (``wait_ready=False``: once the port answers at all) and always stops the
process on exit: SIGTERM, then SIGKILL if it has not exited within ``stop_timeout`` seconds.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerStartError(RuntimeError):
    """The server exited or did not become ready in time; the message holds its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the exit; returns the exit status (SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def _wait_until_up(server: RunningServer, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not server.running:
                raise ServerStartError(
                    f"the server exited with status {server.process.returncode}:\n{server.logs()}"
                )
            try:
                if client.get(server.url + path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise ServerStartError(f"{path} did not answer 200 within {timeout}s:\n{server.logs()}")


@contextmanager
def running_server(
    models_dir: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    wait_ready: bool = True,
    ready_timeout: float = 60.0,
    stop_timeout: float = 30.0,
    port: int | None = None,
) -> Iterator[RunningServer]:
    """Run ``python -m service serve --models MODELS_DIR`` on ``port`` (default: a free one)
    while in the block.

    ``env`` adds ``RECTIFIER_*`` (or other) variables; ``args`` adds CLI flags.
    """
    port = port or free_port()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")])
    )
    command = [
        sys.executable, "-m", "service", "serve",
        "--models", str(models_dir), "--host", "127.0.0.1", "--port", str(port),
        *args,
    ]  # fmt: skip
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finally
        prefix="rectifier-server-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = RunningServer(f"http://127.0.0.1:{port}", process, Path(log_file.name))
    try:
        _wait_until_up(server, "/readyz" if wait_ready else "/livez", ready_timeout)
        yield server
    finally:
        try:
            if server.running:
                server.terminate(stop_timeout)
        finally:
            log_file.close()
            if process.poll() is None:
                process.kill()
                process.wait(5)
            Path(log_file.name).unlink(missing_ok=True)


def model_info_pids(metrics_text: str, model: str) -> set[str]:
    """The ``pid`` labels of ``rectifier_model_info`` for ``model``: under ``--workers``, the
    workers whose copy of the model is loaded (one series per worker)."""
    pids = set()
    for line in metrics_text.splitlines():
        if line.startswith("rectifier_model_info{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels.get("model") == model and "pid" in labels:
                pids.add(labels["pid"])
    return pids


# Small pools for a server the test shares the machine with.
SMALL_POOLS_ENV = {"RECTIFIER_INTRA_OP_THREADS": "1", "RECTIFIER_DECODE_THREADS": "1"}

# The upload limit of the service tests' shared end-to-end server (``e2e_server``).
E2E_MAX_UPLOAD_BYTES = 300_000
