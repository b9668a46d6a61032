"""STOW-RS into Rectifier: the standard answer (ReferencedSOPSequence / FailedSOPSequence
with reasons), the report written to the real Orthanc, and JSON 4xx for what is not
STOW-RS at all."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.helpers.dicom_studies import (
    report_findings,
    series,
    stow_body,
    structured_report,
)
from tests.helpers.dicomweb import MAX_INSTANCES

pytestmark = pytest.mark.pacs
REFERENCED, FAILED = "00081199", "00081198"


def sop_uids(items: list[dict]) -> set[str]:
    return {item["00081155"]["Value"][0] for item in items}


def test_stow_classifies_and_stores_the_report(client, pacs_http):
    study_uid = generate_uid()
    images = series(study_uid, 3, seed=21)
    report_item = structured_report(study_uid)
    body, content_type = stow_body([i.data for i in images] + [report_item.data, b"not dicom"])
    response = client.post(
        "/dicomweb/studies",
        content=body,
        headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
        params={"model": "ct"},
    )
    assert response.status_code == 202, response.text  # some instances failed
    assert response.headers["content-type"].startswith("application/dicom+json")
    answer = response.json()
    assert sop_uids(answer[REFERENCED]["Value"]) == {i.sop_uid for i in images}
    failed = answer[FAILED]["Value"]
    reasons = {item["00081197"]["Value"][0] for item in failed}
    assert reasons == {0x0122, 0xC000}  # SOP class not supported, cannot understand
    comments = " ".join(item["00000902"]["Value"][0] for item in failed)
    assert "structured_report" in comments and "not a DICOM Part 10 file" in comments
    assert "Warning" not in response.headers

    found = pacs_http.post(
        "/tools/find", json={"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}
    ).json()
    assert len(found) == 1  # only the report: STOW-RS into Rectifier stores no source
    report = pydicom.dcmread(io.BytesIO(pacs_http.get(f"/instances/{found[0]}/file").content))
    assert report.Manufacturer == "Rectifier"
    assert set(report_findings(report)) == {i.sop_uid for i in images}


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        ("application/dicom", 415, "unsupported_media_type"),
        (
            'multipart/related; type="application/dicom+xml"; boundary=x',
            415,
            "unsupported_media_type",
        ),
        ('multipart/related; type="application/dicom"', 400, "invalid_multipart"),
        (
            'multipart/related; type="application/dicom"; boundary=elsewhere',
            400,
            "invalid_multipart",
        ),
    ],
)
def test_what_is_not_stow_rs_is_a_json_4xx(client, content_type, status, code):
    body, _ = stow_body([b"x"])
    response = client.post(
        "/dicomweb/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_too_many_parts_are_refused(client):
    body, content_type = stow_body([b"x"] * (MAX_INSTANCES + 1))
    response = client.post(
        "/dicomweb/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["detail"]["max_instances"] == MAX_INSTANCES


def test_an_unknown_model_is_404(client):
    body, content_type = stow_body([b"x"])
    response = client.post(
        "/dicomweb/studies",
        content=body,
        headers={"Content-Type": content_type},
        params={"model": "nope"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
