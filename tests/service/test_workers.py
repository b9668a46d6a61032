"""``rectifier serve --workers N``: several processes on one port, supervised by the parent."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from model import cpus
from service.plumbing.settings import Settings
from service.run.workers import per_worker_settings
from tests.helpers.images import encode, pattern
from tests.helpers.server import REPO_ROOT, model_info_pids, running_server

pytestmark = pytest.mark.e2e

WORKERS = 2


def test_workers_split_the_cores_unless_threads_are_set(model_repo_dir, monkeypatch):
    monkeypatch.setattr("service.run.workers.available_cpus", lambda: 5)
    split = per_worker_settings(Settings(models_dir=model_repo_dir, workers=2))
    assert (split.intra_op_threads, split.decode_threads) == (2, 2)
    explicit = per_worker_settings(
        Settings(models_dir=model_repo_dir, workers=8, intra_op_threads=3)
    )
    assert (explicit.intra_op_threads, explicit.decode_threads) == (3, 1)
    assert cpus.available_cpus() >= 1


def test_zero_workers_is_refused_naming_the_flag(model_repo_dir):
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--models", str(model_repo_dir),
         "--workers", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--workers:" in result.stderr  # the flag that gave it, not the variable


def test_a_port_in_use_is_refused_naming_the_reason(model_repo_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "service", "serve", "--models", str(model_repo_dir),
             "--port", str(taken.getsockname()[1]), "--workers", "2"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert result.returncode != 0
    assert "Address already in use" in result.stderr
    assert "Traceback" not in result.stderr and "started" not in result.stderr


def _metric(text: str, name: str) -> list[tuple[str, float]]:
    return [
        (labels, float(value))
        for labels, value in re.findall(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE)
    ]


def _worker_pids(server) -> list[int]:
    output = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.process.pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    pids = [int(pid) for pid in output.split()]
    # multiprocessing's resource tracker is a child too; the workers are the ones serving.
    return [pid for pid in pids if "spawn_main" in _cmdline(pid)]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _serving_pids(server, timeout: float = 30.0) -> set[str]:
    """The workers whose models are loaded, once both are (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = model_info_pids(httpx.get(f"{server.url}/metrics", timeout=10.0).text, "rgb")
        if len(pids) == WORKERS or time.monotonic() > deadline:
            return pids
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(model_repo_dir):
    with running_server(model_repo_dir, args=["--workers", str(WORKERS)]) as server:
        yield server


def test_workers_serve_predictions_and_sum_their_metrics(served):
    data = encode(pattern(), "PNG")
    requests = 24
    with httpx.Client(base_url=served.url, timeout=30.0) as client:
        before = _metric(client.get("/metrics").text, "rectifier_predictions_total")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            # Fresh connections each time, so the kernel hands them to both workers.
            responses = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{served.url}/v1/models/rgb/predict",
                        files={"image": ("a.png", data)},
                        timeout=30.0,
                    ),
                    range(requests),
                )
            )
        assert [r.status_code for r in responses] == [200] * requests
        top = {r.json()["predictions"][0]["top_k"][0]["label"] for r in responses}
        assert len(top) == 1  # every worker serves the same model the same way

        # The model facts carry one series per worker, so a scrape shows both are up.
        assert _serving_pids(served) == {str(pid) for pid in _worker_pids(served)}
        text = client.get("/metrics").text
    counted = sum(v for labels, v in before if 'status="200"' in labels and "rgb" in labels)
    total = sum(
        v
        for labels, v in _metric(text, "rectifier_predictions_total")
        if 'status="200"' in labels and 'model="rgb"' in labels
    )
    # Counters are summed over the workers: every request counted once, whichever served it.
    assert total - counted == requests
    assert _metric(text, "rectifier_ready") == [("", 1.0)]


def test_reload_is_refused_with_several_workers(served):
    response = httpx.post(f"{served.url}/v1/models/rgb/reload", timeout=30.0)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "reload_unavailable"
    assert "restart" in error["message"] and error["detail"] == {"workers": WORKERS}


def test_sigterm_drains_every_worker_and_exits_zero(model_repo_dir):
    env = {"RECTIFIER_MAX_BATCH_DELAY_MS": "500"}  # requests are surely in flight at SIGTERM
    data = encode(pattern(), "PNG")
    with running_server(model_repo_dir, env=env, args=["--workers", str(WORKERS)]) as server:
        workers = _worker_pids(server)
        assert len(_serving_pids(server)) == len(workers) == WORKERS

        def one(_: int) -> int:
            return httpx.post(
                f"{server.url}/v1/models/rgb/predict",
                files={"image": ("a.png", data)},
                timeout=30.0,
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(one, i) for i in range(6)]
            time.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            statuses = [f.result(timeout=30) for f in futures]
        assert statuses == [200] * 6
        assert server.process.wait(30) == 0
        logs = server.logs()
    assert logs.count("Application shutdown complete") == WORKERS
    assert "Traceback" not in logs
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]


def test_a_dead_worker_stops_the_server_with_status_one(model_repo_dir):
    with running_server(model_repo_dir, args=["--workers", str(WORKERS)]) as server:
        workers = _worker_pids(server)
        assert len(_serving_pids(server)) == WORKERS  # both started: one can drain
        os.kill(workers[0], signal.SIGKILL)
        assert server.process.wait(30) == 1
        logs = server.logs()
    assert "exited with status -9; stopping the others" in logs
    assert logs.count("Application shutdown complete") == 1
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
