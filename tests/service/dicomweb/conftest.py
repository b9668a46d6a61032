"""Fixtures of the DICOMweb tests: a real Orthanc (Debian's, with its DICOMweb plugin and
the Lua auto-routing script) and a real Rectifier server pointing at it, each on a free
127.0.0.1 port, API keys on both sides; every response body is kept for the PHI check."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.dicomweb import LABELS, recording_client, server_env
from tests.helpers.models import make_checkpoint
from tests.helpers.orthanc import (
    Orthanc,
    dicomweb_plugin,
    orthanc_binary,
    running_orthanc,
)
from tests.helpers.server import RunningServer, running_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if orthanc_binary() and dicomweb_plugin():
        return
    if os.environ.get("CI"):
        return  # .ci/run installs Orthanc: its absence there is a failure, not a skip
    skip = pytest.mark.skip(reason="needs Debian's orthanc and orthanc-dicomweb (apt-get)")
    for item in items:
        if "tests/service/dicomweb" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ct_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, model repository) of a grayscale CT model whose card fixes a window."""
    from model.export import export_checkpoint

    folder = tmp_path_factory.mktemp("dicomweb-model")
    checkpoint = make_checkpoint(
        folder / "ct.pt", color_mode="L", labels=LABELS, window=(-600.0, 1500.0), seed=5
    )
    export_checkpoint(checkpoint, folder / "models", "ct")
    return checkpoint, folder / "models"


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """Orthanc without the auto-routing script: the tests call Rectifier themselves."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc"), lua=False) as pacs:
        yield pacs


@pytest.fixture(scope="session")
def server(ct_repo, orthanc: Orthanc) -> Iterator[RunningServer]:
    with running_server(ct_repo[1], env=server_env(orthanc.dicomweb_url)) as running:
        yield running


@pytest.fixture(scope="session")
def bodies() -> list[str]:
    """Every response body the tests' clients received (the PHI check greps them)."""
    return []


@pytest.fixture(scope="session")
def client(server: RunningServer, bodies: list[str]) -> Iterator[httpx.Client]:
    with recording_client(server.url, bodies) as http:
        yield http


@pytest.fixture(scope="session")
def pacs_http(orthanc: Orthanc) -> Iterator[httpx.Client]:
    with orthanc.client() as http:
        yield http
