"""A real Orthanc (Debian's package, with its DICOMweb plugin) started on 127.0.0.1 for the
DICOMweb tests: a generated JSON config, a temporary storage folder, basic auth, a short
``StableAge`` and the project's Lua auto-routing script (docker/orthanc/rectifier.lua)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers.server import REPO_ROOT

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGINS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7",
)
LUA_SCRIPT = REPO_ROOT / "docker" / "orthanc" / "rectifier.lua"
USER, PASSWORD = "rectifier", "orthanc-test-password"


def orthanc_binary() -> str | None:
    found = shutil.which("Orthanc") or (ORTHANC if Path(ORTHANC).exists() else None)
    return found


def dicomweb_plugin() -> str | None:
    return next((path for path in DICOMWEB_PLUGINS if Path(path).exists()), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Orthanc:
    url: str  # REST root
    dicom_port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(USER, PASSWORD), timeout=30.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def orthanc_config(
    storage: Path, http_port: int, dicom_port: int, plugin: str, lua: bool, stable_age: int
) -> dict[str, object]:
    return {
        "Name": "rectifier-test",
        "StorageDirectory": str(storage / "db"),
        "IndexDirectory": str(storage / "db"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [plugin],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "StudiesMetadata": "Full",
            "SeriesMetadata": "Full",
        },
        "StableAge": stable_age,
        "LuaScripts": [str(LUA_SCRIPT)] if lua else [],
        "HttpTimeout": 60,
        "ConcurrentJobs": 2,
        "HttpThreadsCount": 16,
    }


@contextmanager
def running_orthanc(
    folder: Path, *, env: dict[str, str] | None = None, lua: bool = True, stable_age: int = 1
) -> Iterator[Orthanc]:
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    assert binary and plugin, "Orthanc or its DICOMweb plugin is not installed"
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config = folder / "orthanc.json"
    config.write_text(
        json.dumps(orthanc_config(folder, http_port, dicom_port, plugin, lua, stable_age))
    )
    log_path = folder / "orthanc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    orthanc = Orthanc(f"http://127.0.0.1:{http_port}", dicom_port, log_path, process)
    try:
        _wait_ready(orthanc)
        yield orthanc
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(orthanc: Orthanc, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    with orthanc.client() as client:
        while time.monotonic() < deadline:
            if orthanc.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start-up:\n{orthanc.log()[-3000:]}")
            try:
                if client.get("/dicom-web/studies").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"Orthanc did not start within {timeout_s:g}s:\n{orthanc.log()[-3000:]}")
