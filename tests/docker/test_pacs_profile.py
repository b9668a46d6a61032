"""The `pacs` compose profile end to end: ``docker compose --profile pacs up`` plus one CT
uploaded to Orthanc yields a Rectifier report in Orthanc.

Builds the images the profile needs (``serve`` and ``rectifier:orthanc``), brings ``api``
and ``orthanc`` up with the real compose file on free 127.0.0.1 ports, waits until both
are healthy, uploads one CT instance by Orthanc's REST API (basic auth, as the compose file
configures it), then waits for the Lua hook (docker/orthanc/rectifier.lua) to have the API
pull the study once it is stable and store a Structured Report back: Modality SR,
Manufacturer Rectifier, naming the model and referencing the uploaded instance. Storing
the report must not start another one.

Skips like the other container tests when Docker cannot be had here, unless
RECTIFIER_DOCKER_TEST_REQUIRED=1.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.docker import harness
from tests.docker.harness import REPORT

# The daemon, base image, project copy and serve image fixtures of the compose test.
from tests.docker.test_compose import (  # noqa: F401
    READY_TIMEOUT_S,
    docker_host,
    model_name,
    project,
    serve_image,
)
from tests.helpers.dicom import ct_bytes
from tests.helpers.server import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

ORTHANC_IMAGE = "rectifier:orthanc"
# The compose file's defaults: user RECTIFIER_DICOMWEB_USERNAME, password ORTHANC_PASSWORD;
# docker/orthanc/orthanc.json registers that one user.
PACS_USER = "rectifier"
PACS_PASSWORD = f"pacs-test-{uuid.uuid4().hex[:12]}"
# The shipped StableAge (docker/orthanc/orthanc.json) is 10 s; the pull, the inference and
# the STOW of the report take a few more.
REPORT_WAIT_S = 60.0


def stable_age() -> int:
    text = (harness.REPO / "docker/orthanc/orthanc.json").read_text()
    match = re.search(r'"StableAge"\s*:\s*(\d+)', text)
    assert match, "no StableAge in docker/orthanc/orthanc.json"
    return int(match.group(1))


@pytest.fixture(scope="module")
def orthanc_image(project: Path) -> str:  # noqa: F811
    started = time.monotonic()
    result = harness.run(
        [
            harness.buildkit_cli(),
            "build",
            "--progress=plain",
            "-f",
            project / "docker/orthanc/Dockerfile",
            "-t",
            ORTHANC_IMAGE,
            project,
        ],
        timeout=1500,
        env={"DOCKER_BUILDKIT": "1"},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker build of {ORTHANC_IMAGE} failed:\n{result.stdout[-6000:]}")
    REPORT["orthanc build (s)"] = round(time.monotonic() - started, 1)
    REPORT["orthanc image (MB)"] = round(harness.image_size_bytes(ORTHANC_IMAGE) / 1e6)
    return ORTHANC_IMAGE


@dataclass
class Pacs:
    compose: harness.ComposeProject
    api_url: str
    orthanc_url: str

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> bytes:
        token = base64.b64encode(f"{PACS_USER}:{PACS_PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            f"{self.orthanc_url}{path}", data=body, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            data: bytes = response.read()
            return data

    def json(self, method: str, path: str, payload: object | None = None) -> object:
        body = None if payload is None else json.dumps(payload).encode()
        return json.loads(self.request(method, path, body, "application/json" if body else ""))

    def reports(self, study_uid: str) -> list[str]:
        query = {"StudyInstanceUID": study_uid, "Modality": "SR"}
        found = self.json("POST", "/tools/find", {"Level": "Instance", "Query": query})
        assert isinstance(found, list)
        return [str(orthanc_id) for orthanc_id in found]


@pytest.fixture(scope="module")
def pacs(project: Path, serve_image: str, orthanc_image: str) -> Iterator[Pacs]:  # noqa: F811
    api_port, http_port, dicom_port = free_port(), free_port(), free_port()
    compose = harness.ComposeProject(
        directory=project,
        name=f"rectifier-pacs-{uuid.uuid4().hex[:8]}",
        env={
            "RECTIFIER_PUBLISH": f"127.0.0.1:{api_port}",
            "RECTIFIER_PACS_HTTP_PUBLISH": f"127.0.0.1:{http_port}",
            "RECTIFIER_PACS_DICOM_PUBLISH": f"127.0.0.1:{dicom_port}",
            "ORTHANC_PASSWORD": PACS_PASSWORD,
        },
    )
    try:
        started = time.monotonic()
        compose("--profile", "pacs", "up", "-d", "--no-build", timeout=300)
        for service in ("api", "orthanc"):
            harness.wait_until_healthy(compose, service, READY_TIMEOUT_S)
        REPORT["pacs up -> both healthy (s)"] = round(time.monotonic() - started, 1)
        yield Pacs(compose, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{http_port}")
    except Exception:
        print(compose("--profile", "pacs", "logs", "--no-color", timeout=60, check=False)[-8000:])
        raise
    finally:
        compose(
            "--profile",
            "pacs",
            "down",
            "--remove-orphans",
            "--volumes",
            "-t",
            "10",
            timeout=180,
            check=False,
        )


def one_ct() -> tuple[bytes, str, str]:
    """A CT instance with fresh UIDs: (Part 10 bytes, StudyInstanceUID, SOPInstanceUID)."""
    study_uid, sop_uid = generate_uid(), generate_uid()
    ds = pydicom.dcmread(
        io.BytesIO(
            ct_bytes(
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=generate_uid(),
                SOPInstanceUID=sop_uid,
            )
        )
    )
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), study_uid, sop_uid


def strings_in(ds: pydicom.Dataset) -> list[str]:
    """Every string value in a dataset, its sequences included."""
    found: list[str] = []

    def visit(dataset: pydicom.Dataset, element: pydicom.DataElement) -> None:
        values = element.value if element.VM > 1 else [element.value]
        found.extend(str(v) for v in values if isinstance(v, str))

    ds.walk(visit)
    return found


def referenced_sop_uids(ds: pydicom.Dataset) -> set[str]:
    uids: set[str] = set()

    def visit(dataset: pydicom.Dataset, element: pydicom.DataElement) -> None:
        if element.keyword == "ReferencedSOPInstanceUID":
            uids.add(str(element.value))

    ds.walk(visit)
    return uids


def test_orthanc_rejects_a_wrong_password(pacs: Pacs) -> None:
    request = urllib.request.Request(
        f"{pacs.orthanc_url}/system",
        headers={"Authorization": "Basic " + base64.b64encode(b"rectifier:wrong").decode()},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 401


def test_a_ct_uploaded_to_orthanc_gets_a_rectifier_report(pacs: Pacs) -> None:
    data, study_uid, sop_uid = one_ct()
    started = time.monotonic()
    stored = json.loads(pacs.request("POST", "/instances", data, "application/dicom"))
    assert stored["Status"] == "Success", stored

    deadline = started + REPORT_WAIT_S
    found: list[str] = []
    while not found and time.monotonic() < deadline:
        found = pacs.reports(study_uid)
        if not found:
            time.sleep(0.5)
    if not found:
        logs = pacs.compose("--profile", "pacs", "logs", "--no-color", timeout=60, check=False)
        raise AssertionError(f"no report within {REPORT_WAIT_S:g} s:\n{logs[-8000:]}")
    REPORT["pacs upload -> report (s)"] = round(time.monotonic() - started, 1)
    REPORT["pacs StableAge (s)"] = stable_age()

    (orthanc_id,) = found
    report = pydicom.dcmread(io.BytesIO(pacs.request("GET", f"/instances/{orthanc_id}/file")))
    assert report.Modality == "SR"
    assert report.Manufacturer == "Rectifier"
    assert report.StudyInstanceUID == study_uid
    assert sop_uid in referenced_sop_uids(report)
    model = model_name()
    assert model in str(report.SeriesDescription), report.SeriesDescription
    content = [value for item in report.ContentSequence for value in strings_in(item)]
    assert any(model in value for value in content), content

    # Storing the report made the study unstable again: past another StableAge the hook
    # must have seen the report and not asked for a second one.
    time.sleep(stable_age() + 5)
    assert len(pacs.reports(study_uid)) == 1
    logs = pacs.compose("--profile", "pacs", "logs", "--no-color", timeout=60)
    assert "reported" in logs and "Traceback" not in logs, logs[-6000:]
