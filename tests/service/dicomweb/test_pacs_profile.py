"""The `pacs` compose profile, checked without building its image: the compose file wires
Orthanc to the API and the API to Orthanc, and the Orthanc configuration the image ships
(docker/orthanc/orthanc.json, with its ``${ORTHANC_PASSWORD}`` and the Lua script) starts
the real Orthanc with DICOMweb and basic auth. The image build itself runs in the
container test (``make docker-test``, tests/docker/)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers.orthanc import (
    LUA_SCRIPT,
    dicomweb_plugin,
    free_port,
    orthanc_binary,
)

pytestmark = pytest.mark.pacs
REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "docker" / "orthanc" / "orthanc.json"


def test_the_compose_profile_wires_orthanc_and_the_api():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    orthanc = compose["services"]["orthanc"]
    assert orthanc["profiles"] == ["pacs"]
    assert orthanc["build"]["dockerfile"] == "docker/orthanc/Dockerfile"
    assert orthanc["environment"]["RECTIFIER_URL"] == "http://api:8000"
    api = compose["services"]["api"]["environment"]
    assert "http://orthanc:8042/dicom-web" in api["RECTIFIER_DICOMWEB_URL"]
    assert api["RECTIFIER_DICOMWEB_PASSWORD"] == orthanc["environment"]["ORTHANC_PASSWORD"]
    dockerfile = (REPO / "docker" / "orthanc" / "Dockerfile").read_text()
    assert "orthanc orthanc-dicomweb" in dockerfile and "USER orthanc" in dockerfile


def _without_comments(text: str) -> str:
    return re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE)


def test_the_shipped_config_starts_orthanc_with_dicomweb_and_auth(tmp_path):
    config = json.loads(_without_comments(CONFIG.read_text()))
    assert config["Plugins"] == [dicomweb_plugin()] or Path(config["Plugins"][0]).exists()
    assert Path(config["LuaScripts"][0]).name == LUA_SCRIPT.name
    assert config["RegisteredUsers"] == {"rectifier": "${ORTHANC_PASSWORD}"}
    # This machine's paths and free ports; everything else as shipped.
    port = free_port()
    config.update(
        HttpPort=port,
        DicomPort=free_port(),
        StorageDirectory=str(tmp_path / "db"),
        IndexDirectory=str(tmp_path / "db"),
        LuaScripts=[str(LUA_SCRIPT)],
        RemoteAccessAllowed=False,
    )
    path = tmp_path / "orthanc.json"
    path.write_text(json.dumps(config))
    binary = orthanc_binary()
    assert binary is not None
    env = {"ORTHANC_PASSWORD": "from-the-environment", "PATH": "/usr/bin:/bin"}
    log = (tmp_path / "log").open("wb")
    process = subprocess.Popen([binary, str(path)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(
                    f"{url}/dicom-web/studies", auth=("rectifier", "from-the-environment")
                ).status_code
            except httpx.HTTPError:
                time.sleep(0.1)
        assert status == 200, (tmp_path / "log").read_text()
        assert httpx.get(f"{url}/dicom-web/studies", auth=("rectifier", "x")).status_code == 401
        assert _errors((tmp_path / "log").read_text()) == ""  # the Lua script loaded cleanly
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _errors(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if line.startswith("E"))
