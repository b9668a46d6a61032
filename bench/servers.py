"""Start, wait for and stop the servers under test, and drive them with the load generator.

Every server listens on 127.0.0.1 on a free port, in its own process group so that it and
its children (BentoML's workers) are stopped together: SIGTERM, then SIGKILL after a grace
period. Startup and every load run are bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


class BenchError(RuntimeError):
    """A server would not start or a measurement could not be taken."""


def add_load_arguments(parser: argparse.ArgumentParser, duration: float) -> None:
    """The options every round-based comparison takes: the image, rounds and load levels."""
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "images" / "no_entry.jpg")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=duration, help="seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--levels", type=lambda t: [int(x) for x in t.split(",")], default=[1, 16])
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def running(
    name: str,
    command: Sequence[str],
    *,
    ready_path: str,
    log_dir: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    ready_timeout: float = 120.0,
) -> Iterator[Server]:
    """Run ``command`` (which must listen on 127.0.0.1:``port``) while in the block."""
    log_path = log_dir / f"{name}.log"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), environment.get("PYTHONPATH")])
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: children stop with it
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while not _ready(server.url + ready_path):
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} not ready in {ready_timeout:g}s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass


def uvicorn_command(app: str, port: int, *, access_log: bool = True, workers: int = 1) -> list[str]:
    """uvicorn as the peers run it: uvloop and httptools, like Rectifier."""
    command = [
        PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
        "--workers", str(workers),
    ]  # fmt: skip
    return command if access_log else [*command, "--no-access-log"]


def litserve_command(port: int) -> list[str]:
    """The LitServe peer (``bench/peers/litserve_service.py``) on 127.0.0.1:``port``."""
    script = REPO / "bench" / "peers" / "litserve_service.py"
    return [PYTHON, str(script), "--port", str(port)]


def rectifier_command(models_dir: Path, port: int, *, workers: int = 1) -> list[str]:
    return [
        PYTHON, "-m", "service", "serve", "--models", str(models_dir),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


@dataclass(frozen=True)
class LoadSpec:
    image: Path
    path: str
    field: str = "image"
    protocol: str = "v1"  # rectifier bench --protocol: v1, v2-binary or v2-json


TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of process ``root`` and all its live descendants (server
    workers that start process groups of their own included)."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (parent pid, CPU ticks)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after the command: state, ppid, pgrp, ...; utime and stime at 11 and 12
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += stats.get(pid, (0, 0))[1]
        pending.extend(children.get(pid, ()))
    return total / TICKS


def drive(
    server: Server,
    load: LoadSpec,
    levels: Sequence[int],
    *,
    duration: float,
    warmup: float,
) -> list[dict[str, Any]]:
    """The load generator (its own process, one per level) against ``server``; its JSON
    rows, each with ``server_cpu``: the cores the server's processes used while the
    level ran (its warm-up included), and the generator's own ``cpu_cores``."""
    rows = []
    for level in levels:
        command = [
            PYTHON, "-m", "service.loadgen.client", server.url, "--image", str(load.image),
            "--path", load.path, "--field", load.field, "--protocol", load.protocol,
            "--concurrency", str(level), "--duration", str(duration),
            "--warmup", str(warmup), "--json",
        ]  # fmt: skip
        budget = duration + warmup + 45
        cpu_before, started = tree_cpu_s(server.process.pid), time.monotonic()
        try:
            done = subprocess.run(
                command, cwd=REPO, capture_output=True, text=True, timeout=budget, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"load generator against {server.name} ran past {budget:g}s") from exc
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            raise BenchError(
                f"load generator against {server.name} failed ({done.returncode}): "
                f"{done.stderr.strip()}\n{server.log_tail(10)}"
            )
        (row,) = json.loads(done.stdout)["results"]
        row["server_cpu"] = (tree_cpu_s(server.process.pid) - cpu_before) / elapsed
        rows.append(row)
    return rows
