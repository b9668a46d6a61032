"""Fixtures of the service tests: a JPEG, and one real server over the shared models."""

from __future__ import annotations

import pytest

from tests.helpers.images import encode, pattern
from tests.helpers.server import E2E_MAX_UPLOAD_BYTES


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(pattern(), "JPEG", quality=90)


@pytest.fixture(scope="session")
def e2e_server(model_repo_dir):
    """One real server (uvicorn subprocess) over the shared ``rgb`` and ``gray`` models."""
    from tests.helpers.server import running_server

    env = {
        "RECTIFIER_DEFAULT_MODEL": "rgb",
        "RECTIFIER_MAX_UPLOAD_BYTES": str(E2E_MAX_UPLOAD_BYTES),
        "RECTIFIER_MAX_IMAGES_PER_REQUEST": "8",
    }
    with running_server(model_repo_dir, env=env) as server:
        yield server


@pytest.fixture(scope="session")
def http(e2e_server):
    import httpx

    with httpx.Client(base_url=e2e_server.url, timeout=30.0) as client:
        yield client
