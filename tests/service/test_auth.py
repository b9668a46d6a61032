"""API keys, against the real server: predict and model routes need them, probes do not."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.images import encode, pattern
from tests.helpers.server import running_server

pytestmark = pytest.mark.e2e

KEYS = "first-secret-key,second-secret-key"


@pytest.fixture(scope="module")
def secured(model_repo_dir):
    with (
        running_server(model_repo_dir, env={"RECTIFIER_API_KEYS": KEYS}) as server,
        httpx.Client(base_url=server.url, timeout=30.0) as client,
    ):
        yield client, server


def post(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.post(
        "/v1/models/rgb/predict",
        files={"image": ("a.png", encode(pattern(), "PNG"))},
        headers=headers,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-secret-key"},
        {"Authorization": "Basic Zmlyc3Q6c2VjcmV0"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong-key", "wrong-scheme", "empty"],
)
def test_predict_without_a_valid_key_is_401(secured, headers):
    client, _ = secured
    response = post(client, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith('Bearer realm="rectifier"')


@pytest.mark.parametrize("key", KEYS.split(","))
def test_every_configured_key_works(secured, key):
    client, _ = secured
    assert post(client, {"Authorization": f"Bearer {key}"}).status_code == 200
    listing = client.get("/v1/models", headers={"Authorization": f"bearer {key}"})
    assert listing.status_code == 200


def test_model_routes_need_a_key(secured):
    client, _ = secured
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models/rgb").status_code == 401


def test_probes_and_metrics_stay_open(secured):
    client, _ = secured
    for path in ("/livez", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_keys_are_never_logged(secured):
    client, server = secured
    post(client, {"Authorization": "Bearer first-secret-key"})
    post(client, {"Authorization": "Bearer not-a-valid-key"})
    logs = server.logs()
    assert "/v1/models/rgb/predict" in logs  # the access log is there
    assert "first-secret-key" not in logs and "not-a-valid-key" not in logs
