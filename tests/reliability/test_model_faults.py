"""Model faults: broken model files do not stop the server, and a model that fails at
inference time fails only the request that made it fail.

Decision (docs/reliability.md): ``/readyz`` is 200 when loading has finished and at least
one model serves; it lists every model that failed to load with its reason, so a probe
keeps routing traffic to the healthy models and an operator sees what is broken.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest

from model.card import read_card
from tests.helpers.images import encode
from tests.helpers.models import ExportedModel
from tests.helpers.server import RunningServer, running_server
from tests.reliability import faults

pytestmark = pytest.mark.e2e

BROKEN = {
    "corrupt": "random bytes",
    "truncated": "cut in half",
    "nocard": "no card",
    "mismatch": "card does not match the graph",
    "empty": "version folder without model.onnx",
}


@pytest.fixture(scope="module")
def faulty_server(
    model_repo: dict[str, ExportedModel], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    healthy = model_repo["rgb"].onnx_path
    repo = tmp_path_factory.mktemp("faulty-models")
    faults.copy_model(healthy, repo, "rgb")
    faults.write_random_bytes(repo, "corrupt")
    faults.write_truncated(healthy, repo, "truncated")
    faults.write_without_card(healthy, repo, "nocard")
    faults.write_mismatched_card(healthy, repo, "mismatch")
    faults.model_path(repo, "empty")  # the folder only
    faults.write_exploding(read_card(healthy), repo, "explode")
    env = {"RECTIFIER_MAX_BATCH_DELAY_MS": "100"}
    with running_server(repo, env=env) as server:
        yield server


def solid(value: int) -> bytes:
    from PIL import Image

    return encode(Image.new("RGB", (40, 40), (value, value, value)), "PNG")


def predict(client: httpx.Client, model: str, image: bytes) -> httpx.Response:
    return client.post(
        f"/v1/models/{model}/predict", content=image, headers={"Content-Type": "image/png"}
    )


def test_broken_models_are_reported_and_healthy_ones_serve(faulty_server: RunningServer) -> None:
    with httpx.Client(base_url=faulty_server.url, timeout=10) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        failed = {entry["model"]: entry["reason"] for entry in ready.json()["failed"]}
        assert set(failed) == set(BROKEN), failed
        listing = client.get("/v1/models").json()
        assert sorted(m["name"] for m in listing["models"]) == ["explode", "rgb"]
        reasons = {entry["model"]: entry["reason"] for entry in listing["failed"]}
        assert reasons == failed
        assert "missing" in reasons["empty"]
        assert "card" in reasons["nocard"].lower() or "metadata" in reasons["nocard"].lower()
        assert "label" in reasons["mismatch"]
        for name in ("corrupt", "truncated"):
            assert reasons[name], name
        assert predict(client, "rgb", solid(128)).status_code == 200
        missing = predict(client, "corrupt", solid(128))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "model_not_found"
    logs = faulty_server.logs()
    for name in BROKEN:
        assert f"model {name} version 1 not served:" in logs, name


def test_inference_failure_fails_only_its_request(faulty_server: RunningServer) -> None:
    dark, bright = solid(128), solid(255)
    with httpx.Client(base_url=faulty_server.url, timeout=10) as client:
        assert predict(client, "explode", dark).status_code == 200
        boom = predict(client, "explode", bright)
        assert boom.status_code == 500
        error = boom.json()["error"]
        assert error["code"] == "internal_error"
        assert error["request_id"] and error["request_id"] == boom.headers["x-request-id"]
        assert error["request_id"] in error["message"]
        assert predict(client, "explode", dark).status_code == 200
        assert predict(client, "rgb", bright).status_code == 200

    # Concurrent requests share batches (100 ms batch delay): only the bright one fails.
    images = [dark] * 7 + [bright] + [dark] * 7
    with (
        httpx.Client(base_url=faulty_server.url, timeout=10) as client,
        concurrent.futures.ThreadPoolExecutor(len(images)) as pool,
    ):
        statuses = list(
            pool.map(lambda image: predict(client, "explode", image).status_code, images)
        )
    assert statuses == [200] * 7 + [500] + [200] * 7
    logs = faulty_server.logs()
    assert "retrying one by one" in logs
    assert "inference failed" in logs
    assert faulty_server.running
