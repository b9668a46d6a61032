"""A PACS that fails: down, answering 5xx, too slow, refusing the report's STOW-RS, or
refusing Rectifier's credentials (Orthanc's own basic auth). Each is a clear JSON error
naming the PACS, nothing is written, nothing of the PACS's answer is echoed, and the
service keeps serving. The app runs in process (TestClient) against the real Orthanc,
behind a proxy that misbehaves on demand."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from pydicom.uid import generate_uid

from service.app.factory import create_app
from service.plumbing.settings import Settings
from tests.helpers.dicom_studies import series
from tests.helpers.faulty_pacs import FaultyPacs
from tests.helpers.orthanc import PASSWORD, USER

pytestmark = pytest.mark.pacs


@pytest.fixture(scope="module")
def faulty(orthanc) -> Iterator[FaultyPacs]:
    with FaultyPacs(orthanc.url).running() as proxy:
        yield proxy


@contextmanager
def app_client(ct_repo, url: str | None, **settings: object) -> Iterator[TestClient]:
    """The app in process, once its models are loaded (they load in the background)."""
    options: dict[str, object] = {"models_dir": ct_repo[1], "dicomweb_timeout_s": 1.0}
    if url is not None:
        options.update(dicomweb_url=url, dicomweb_username=USER, dicomweb_password=PASSWORD)
    with TestClient(create_app(Settings(**{**options, **settings}))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app did not become ready"
            time.sleep(0.05)
        yield client


@pytest.fixture(scope="module")
def via_proxy(ct_repo, faulty: FaultyPacs) -> Iterator[TestClient]:
    with app_client(ct_repo, f"{faulty.url}/dicom-web") as client:
        yield client


@pytest.fixture(scope="module")
def study(pacs_http) -> list:
    instances = series(generate_uid(), 2, seed=11)
    for instance in instances:
        assert pacs_http.post("/instances", content=instance.data).status_code == 200
    return instances


@pytest.fixture
def mode(faulty: FaultyPacs) -> Iterator[FaultyPacs]:
    yield faulty
    faulty.mode = "pass"


def pull(client: TestClient, bodies: list[str], study_uid: str):
    response = client.post(f"/v1/models/ct/dicomweb/studies/{study_uid}")
    bodies.append(response.text)
    return response


@pytest.mark.parametrize(
    ("fault", "status", "code", "says"),
    [
        ("error", 502, "pacs_error", "the PACS answered the study search (QIDO-RS) with HTTP 500"),
        ("slow", 504, "pacs_timeout", "the PACS did not answer the study search"),
        ("drop", 502, "pacs_error", "the PACS could not be reached"),
    ],
)
def test_a_failing_pacs_is_a_clear_error(via_proxy, mode, study, bodies, fault, status, code, says):
    mode.mode = fault
    stores = mode.stores
    response = pull(via_proxy, bodies, study[0].study_uid)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    assert "Quixote" not in response.text  # the PACS's error page is not echoed
    assert mode.stores == stores  # nothing written
    mode.mode = "pass"
    assert via_proxy.get("/readyz").status_code == 200
    assert pull(via_proxy, bodies, study[0].study_uid).status_code == 200  # still serving


def test_a_refused_report_keeps_the_predictions(via_proxy, mode, study, bodies, pacs_http):
    mode.mode = "refuse_store"
    response = pull(via_proxy, bodies, study[0].study_uid)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "pacs_store_failed"
    assert "the PACS answered the report upload (STOW-RS) with HTTP 409" in error["message"]
    detail = error["detail"]
    assert detail["report"]["stored"] is False
    assert {e["sop_instance_uid"] for e in detail["instances"]} == {i.sop_uid for i in study}
    assert all(e["predictions"][0]["top_k"] for e in detail["instances"])


def test_bad_credentials_are_the_pacs_401(ct_repo, orthanc, study, bodies):
    with app_client(
        ct_repo, orthanc.dicomweb_url, dicomweb_password="not-the-password", dicomweb_timeout_s=15.0
    ) as client:
        response = pull(client, bodies, study[0].study_uid)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "pacs_unauthorized"
    assert error["detail"]["pacs_status"] == 401
    assert "WWW-Authenticate" not in response.headers  # not the caller's key at fault
    assert "not-the-password" not in response.text


def test_no_pacs_configured(ct_repo, study, bodies):
    from tests.helpers.dicom_studies import stow_body

    with app_client(ct_repo, None) as client:
        response = pull(client, bodies, study[0].study_uid)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "pacs_not_configured"
        body, content_type = stow_body([instance.data for instance in study])
        stored = client.post(
            "/dicomweb/studies", content=body, headers={"Content-Type": content_type}
        )
        bodies.append(stored.text)
    assert stored.status_code == 200, stored.text
    assert "no PACS is configured" in stored.headers["Warning"]
    referenced = stored.json()["00081199"]["Value"]
    assert {item["00081155"]["Value"][0] for item in referenced} == {i.sop_uid for i in study}
