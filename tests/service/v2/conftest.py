"""The real server for the V2 end-to-end tests, started once for the package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.http as httpclient

from tests.helpers.server import SMALL_POOLS_ENV as SERVER_ENV
from tests.helpers.server import RunningServer, running_server


@pytest.fixture(scope="package")
def server(model_repo_dir: Path) -> Iterator[RunningServer]:
    with running_server(model_repo_dir, env=SERVER_ENV) as running:
        yield running


@pytest.fixture(scope="package")
def client(server: RunningServer) -> Iterator[httpclient.InferenceServerClient]:
    triton = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield triton
    triton.close()
