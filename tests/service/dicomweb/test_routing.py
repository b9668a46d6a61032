"""Automatic routing with no human in the loop: studies sent to a real Orthanc (a CT by
DICOM C-STORE with dcmtk's ``storescu``, an MR by its REST API) become stable after
``StableAge`` (1 s here), the Lua script (docker/orthanc/rectifier.lua) asks Rectifier to
pull them, and each study gets exactly one report whose labels are ``/predict``'s."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.helpers.dicom_studies import Instance, report_findings, series
from tests.helpers.dicomweb import API_KEY, predict, recording_client, server_env
from tests.helpers.orthanc import Orthanc, running_orthanc
from tests.helpers.server import RunningServer, free_port, running_server

pytestmark = pytest.mark.pacs
REPORT_WAIT_S = 30.0


@pytest.fixture(scope="module")
def routed(tmp_path_factory, ct_repo) -> Iterator[tuple[Orthanc, RunningServer]]:
    port = free_port()
    env = {
        "RECTIFIER_URL": f"http://127.0.0.1:{port}",
        "RECTIFIER_MODEL": "ct",
        "RECTIFIER_API_KEY": API_KEY,
    }
    folder = tmp_path_factory.mktemp("orthanc-lua")
    with (
        running_orthanc(folder, env=env, lua=True, stable_age=1) as pacs,
        running_server(ct_repo[1], env=server_env(pacs.dicomweb_url), port=port) as server,
    ):
        yield pacs, server


def storescu(pacs: Orthanc, instances: list[Instance], folder: Path) -> None:
    files = []
    for index, instance in enumerate(instances):
        path = folder / f"{index}.dcm"
        path.write_bytes(instance.data)
        files.append(str(path))
    command = ["storescu", "-aec", "ORTHANC", "127.0.0.1", str(pacs.dicom_port), *files]
    subprocess.run(command, check=True, capture_output=True, timeout=30)


def wait_for_reports(pacs_http: httpx.Client, study_uid: str) -> list[pydicom.Dataset]:
    deadline = time.monotonic() + REPORT_WAIT_S
    while time.monotonic() < deadline:
        found = pacs_http.post(
            "/tools/find",
            json={"Level": "Instance", "Query": {"StudyInstanceUID": study_uid, "Modality": "SR"}},
        ).json()
        if found:
            return [
                pydicom.dcmread(io.BytesIO(pacs_http.get(f"/instances/{i}/file").content))
                for i in found
            ]
        time.sleep(0.25)
    raise AssertionError(f"no report for study {study_uid} within {REPORT_WAIT_S:g}s")


@pytest.mark.skipif(shutil.which("storescu") is None, reason="needs dcmtk's storescu")
def test_studies_sent_to_the_pacs_get_their_report(routed, tmp_path, bodies):
    pacs, server = routed
    ct_study, mr_study = generate_uid(), generate_uid()
    ct = series(ct_study, 2, seed=41) + series(ct_study, 1, seed=42)
    mr = series(mr_study, 2, modality="MR", seed=43)
    with pacs.client() as pacs_http, recording_client(server.url, bodies) as client:
        storescu(pacs, ct, tmp_path)
        for instance in mr:
            assert pacs_http.post("/instances", content=instance.data).status_code == 200
        for study_uid, instances in ((ct_study, ct), (mr_study, mr)):
            (report,) = wait_for_reports(pacs_http, study_uid)
            assert report.Manufacturer == "Rectifier"
            findings = report_findings(report)
            assert set(findings) == {instance.sop_uid for instance in instances}
            for instance in instances:
                expected = predict(client, instance)[0]["top_k"]
                labels = [label for label, _ in findings[instance.sop_uid]]
                assert labels == [entry["label"] for entry in expected]
                scores = [p for _, p in findings[instance.sop_uid]]
                assert scores == pytest.approx([e["probability"] for e in expected], abs=1e-5)
        time.sleep(2.5)  # past another StableAge: storing the report must not start another
        for study_uid in (ct_study, mr_study):
            assert len(wait_for_reports(pacs_http, study_uid)) == 1
    assert "reported" in pacs.log()
    assert "dicomweb pull" in server.logs()
