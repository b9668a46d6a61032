"""The pull endpoint against a real Orthanc: a study fetched by WADO-RS, every image
classified as ``/predict`` classifies the same file, one SR stored back by STOW-RS that
references exactly the classified instances; several series and chunks, frames, non-image
objects, an unknown study."""

from __future__ import annotations

import io

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from model.card import card_digest, read_card
from tests.helpers.dicom_studies import (
    multi_frame_instance,
    report_findings,
    report_parameters,
    series,
    structured_report,
    waveform,
    without_pixels,
)
from tests.helpers.dicomweb import CHUNK, predict, upload

pytestmark = pytest.mark.pacs
TOLERANCE = 1e-5


def assert_same_predictions(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected) == 1
    got_top, expected_top = got[0]["top_k"], expected[0]["top_k"]
    assert [e["label"] for e in got_top] == [e["label"] for e in expected_top]
    for mine, theirs in zip(got_top, expected_top, strict=True):
        assert mine["probability"] == pytest.approx(theirs["probability"], abs=TOLERANCE)


def stored_report(pacs_http: httpx.Client, study_uid: str, sop_uid: str) -> pydicom.Dataset:
    found = pacs_http.post(
        "/tools/find", json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}}
    )
    assert found.json(), "the report is not in the PACS"
    data = pacs_http.get(f"/instances/{found.json()[0]}/file").content
    report = pydicom.dcmread(io.BytesIO(data))
    assert report.StudyInstanceUID == study_uid
    return report


def test_a_study_is_pulled_classified_and_reported(client, pacs_http, ct_repo):
    study_uid = generate_uid()
    instances = series(study_uid, 3, seed=1) + series(study_uid, 3, modality="MR", seed=2)
    upload(pacs_http, instances)

    response = client.post(f"/v1/models/ct/dicomweb/studies/{study_uid}", params={"top_k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    card = read_card(ct_repo[1] / "ct" / "1" / "model.onnx")
    assert body["card_digest"] == card_digest(card)
    assert body["skipped"] == []
    by_uid = {entry["sop_instance_uid"]: entry for entry in body["instances"]}
    assert set(by_uid) == {instance.sop_uid for instance in instances}
    for instance in instances:
        assert by_uid[instance.sop_uid]["series_uid"] == instance.series_uid
        expected = predict(client, instance, top_k=2)
        assert_same_predictions(by_uid[instance.sop_uid]["predictions"], expected)
    assert {"search", "fetch", "inference", "report", "store", "total"} <= set(body["timings_ms"])

    report = body["report"]
    assert report["stored"] is True and report["study_uid"] == study_uid
    stored = stored_report(pacs_http, study_uid, report["sop_instance_uid"])
    assert stored.SeriesInstanceUID == report["series_uid"]
    assert stored.SeriesInstanceUID not in {i.series_uid for i in instances}
    assert stored.Manufacturer == "Rectifier"
    findings = report_findings(stored)
    assert set(findings) == {instance.sop_uid for instance in instances}
    for uid, scores in findings.items():
        top = by_uid[uid]["predictions"][0]["top_k"]
        assert [label for label, _ in scores] == [entry["label"] for entry in top]
        assert [p for _, p in scores] == pytest.approx([e["probability"] for e in top], abs=1e-9)
    parameters = report_parameters(stored)
    assert parameters["name"] == "ct" and parameters["version"] == "1"
    assert parameters["parameters"] == f"card_digest={card_digest(card)}"
    evidence = stored.CurrentRequestedProcedureEvidenceSequence[0]
    referenced = {
        str(sop.ReferencedSOPInstanceUID)
        for series_item in evidence.ReferencedSeriesSequence
        for sop in series_item.ReferencedSOPSequence
    }
    assert referenced == {instance.sop_uid for instance in instances}


def test_store_false_classifies_without_writing(client, pacs_http):
    study_uid = generate_uid()
    upload(pacs_http, series(study_uid, 1, seed=3))
    response = client.post(f"/v1/dicomweb/studies/{study_uid}", params={"store": "false"})
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert report["stored"] is False and "store=false" in report["reason"]
    series_found = pacs_http.get(f"/studies/{_orthanc_study(pacs_http, study_uid)}/series").json()
    assert len(series_found) == 1  # the source series only


def _orthanc_study(pacs_http: httpx.Client, study_uid: str) -> str:
    found = pacs_http.post(
        "/tools/find", json={"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}
    ).json()
    assert found
    return str(found[0])


def test_frames_and_non_image_objects(client, pacs_http):
    study_uid = generate_uid()
    images = series(study_uid, CHUNK + 1, seed=4)  # two chunks
    frames = multi_frame_instance(study_uid)
    others = [structured_report(study_uid), waveform(study_uid), without_pixels(study_uid)]
    upload(pacs_http, [*images, frames, *others])
    url = f"/v1/models/ct/dicomweb/studies/{study_uid}"

    body = client.post(url, params={"store": "false"}).json()
    assert {e["sop_instance_uid"] for e in body["instances"]} == {i.sop_uid for i in images}
    reasons = {entry["sop_instance_uid"]: entry for entry in body["skipped"]}
    assert reasons[frames.sop_uid]["reason"] == "multiple_frames"
    assert "?frame=" in reasons[frames.sop_uid]["message"]
    assert "parameters.frame" not in reasons[frames.sop_uid]["message"]
    assert reasons[others[0].sop_uid]["reason"] == "structured_report"
    assert reasons[others[1].sop_uid]["reason"] == "waveform"
    assert reasons[others[2].sop_uid]["reason"] == "no_pixel_data"
    assert all(entry["series_uid"] for entry in body["skipped"])

    body = client.post(url, params={"frame": 1}).json()
    by_uid = {entry["sop_instance_uid"]: entry for entry in body["instances"]}
    assert set(by_uid) == {i.sop_uid for i in [*images, frames]}
    assert_same_predictions(by_uid[frames.sop_uid]["predictions"], predict(client, frames, frame=1))
    stored = stored_report(pacs_http, study_uid, body["report"]["sop_instance_uid"])
    assert set(report_findings(stored)) == set(by_uid)

    beyond = client.post(url, params={"frame": 3, "store": "false"}).json()
    skipped = {entry["sop_instance_uid"]: entry for entry in beyond["skipped"]}
    assert skipped[frames.sop_uid]["reason"] == "invalid_image"


def test_an_unknown_study_is_404(client):
    response = client.post(f"/v1/models/ct/dicomweb/studies/{generate_uid()}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "study_not_found"
    assert "the PACS" in response.json()["error"]["message"]


def test_routes_need_the_api_key(server):
    study = generate_uid()
    assert httpx.post(f"{server.url}/v1/dicomweb/studies/{study}").status_code == 401
    assert httpx.post(f"{server.url}/dicomweb/studies").status_code == 401


def test_a_study_uid_is_a_uid(client):
    response = client.post("/v1/models/ct/dicomweb/studies/not-a-uid")
    assert response.status_code == 422
