"""The real server for the V2 end-to-end tests, started once for the package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.http as httpclient

from tests.serverutil import RunningServer, running_server

# Small pools: the test machine is shared.
SERVER_ENV = {"RECTIFIER_INTRA_OP_THREADS": "1", "RECTIFIER_DECODE_THREADS": "1"}


@pytest.fixture(scope="package")
def server(model_repo_dir: Path) -> Iterator[RunningServer]:
    with running_server(model_repo_dir, env=SERVER_ENV) as running:
        yield running


@pytest.fixture(scope="package")
def client(server: RunningServer) -> Iterator[httpclient.InferenceServerClient]:
    triton = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield triton
    triton.close()
