"""Builders of the DICOMweb tests: the test server's settings, an HTTP client that keeps
every body for the PHI check, uploads into Orthanc and ``/predict`` of one instance."""

from __future__ import annotations

import httpx

from tests.helpers.dicom_studies import Instance
from tests.helpers.orthanc import PASSWORD, USER

LABELS = ("normal", "nodule")
API_KEY = "dicomweb-test-key"
MAX_INSTANCES = 30  # RECTIFIER_DICOMWEB_MAX_INSTANCES of the test server
MAX_IMAGE_PIXELS = 100_000  # a 64x64 slice passes, a 400x400 one does not
CHUNK = 4  # RECTIFIER_MAX_IMAGES_PER_REQUEST: a study of several chunks


def server_env(pacs_url: str, **extra: str) -> dict[str, str]:
    return {
        "RECTIFIER_DICOMWEB_URL": pacs_url,
        "RECTIFIER_DICOMWEB_USERNAME": USER,
        "RECTIFIER_DICOMWEB_PASSWORD": PASSWORD,
        "RECTIFIER_LOG_LEVEL": "DEBUG",
        "RECTIFIER_API_KEYS": API_KEY,
        "RECTIFIER_MAX_IMAGES_PER_REQUEST": str(CHUNK),
        "RECTIFIER_DICOMWEB_MAX_INSTANCES": str(MAX_INSTANCES),
        "RECTIFIER_MAX_IMAGE_PIXELS": str(MAX_IMAGE_PIXELS),
        **extra,
    }


def recording_client(url: str, bodies: list[str], **options: object) -> httpx.Client:
    def keep(response: httpx.Response) -> None:
        response.read()
        bodies.append(response.text)
        bodies.append(str(response.headers))

    return httpx.Client(
        base_url=url,
        timeout=60.0,
        headers={"Authorization": f"Bearer {API_KEY}"},
        event_hooks={"response": [keep]},
        **options,  # type: ignore[arg-type]
    )


def upload(pacs_http: httpx.Client, instances: list[Instance]) -> None:
    for instance in instances:
        response = pacs_http.post("/instances", content=instance.data)
        assert response.status_code == 200, response.text


def predict(client: httpx.Client, instance: Instance, **params: object) -> list[dict]:
    response = client.post(
        "/v1/models/ct/predict",
        content=instance.data,
        headers={"Content-Type": "application/dicom"},
        params=params,
    )
    assert response.status_code == 200, response.text
    return response.json()["predictions"]
