"""The service app in process (FastAPI's TestClient), for tests that need no server."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from service.app.state import state_of


def wait_loaded(client: TestClient) -> None:
    """Until the app's model repository has finished loading (30 s at most)."""
    deadline = time.monotonic() + 30
    while state_of(client.app).repository.state == "loading":  # type: ignore[union-attr,arg-type]
        assert time.monotonic() < deadline
        time.sleep(0.02)
