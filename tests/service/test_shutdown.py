"""Graceful shutdown of the real server: SIGTERM with requests in flight loses none."""

from __future__ import annotations

import concurrent.futures
import signal
import time

import httpx
import pytest

from tests.helpers.images import encode, pattern
from tests.helpers.server import running_server

pytestmark = pytest.mark.e2e

IN_FLIGHT = 8


def test_sigterm_lets_in_flight_requests_finish(model_repo_dir):
    env = {
        # Hold each batch open for 800 ms so the requests are surely in flight at SIGTERM.
        "RECTIFIER_MAX_BATCH_DELAY_MS": "800",
        "RECTIFIER_SHUTDOWN_DELAY_S": "1.0",
    }
    data = encode(pattern(), "PNG")
    with running_server(model_repo_dir, env=env) as server:
        # Clients and their connections exist before the load starts, so only the server's
        # behaviour is timed, not client set-up on a busy machine.
        clients = [httpx.Client(base_url=server.url, timeout=30.0) for _ in range(IN_FLIGHT + 1)]
        for client in clients:
            assert client.get("/livez").status_code == 200
        probe = clients.pop()

        def one(client: httpx.Client) -> int:
            return client.post(
                "/v1/models/rgb/predict", files={"image": ("a.png", data)}
            ).status_code

        try:
            with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
                futures = [pool.submit(one, client) for client in clients]
                time.sleep(0.3)
                server.process.send_signal(signal.SIGTERM)
                ready = probe.get("/readyz")
                statuses = [f.result(timeout=30) for f in futures]
        finally:
            for client in [*clients, probe]:
                client.close()
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert "shutting down" in ready.json()["error"]["message"]
        assert statuses == [200] * IN_FLIGHT
        assert server.process.wait(30) == 0
        logs = server.logs()
    assert "Application shutdown complete" in logs
    assert "Traceback" not in logs


def test_idle_server_exits_zero_at_once_on_sigterm(model_repo_dir):
    with running_server(model_repo_dir) as server:
        began = time.monotonic()
        assert server.terminate(timeout=15) == 0
        assert time.monotonic() - began < 10
