"""Hot reload: ``POST /v1/models/{name}/reload`` under load.

A new version is loaded and warmed before it takes traffic, requests in flight finish on the
old one (none fails), a reload that fails leaves the old versions serving, and names from
the URL never reach the filesystem outside the models folder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.helpers.images import encode, scene
from tests.helpers.models import ExportedModel
from tests.helpers.rawhttp import send_raw
from tests.helpers.server import RunningServer, running_server
from tests.reliability import faults

pytestmark = pytest.mark.e2e

BODY_TIMEOUT_S = 2.0  # the old version is retired this long (+5 s) after the swap
CLIENTS = 8


@pytest.fixture()
def hot_server(
    model_repo: dict[str, ExportedModel], tmp_path: Path
) -> Iterator[tuple[RunningServer, Path]]:
    repo = tmp_path / "models"
    faults.copy_model(model_repo["rgb"].onnx_path, repo, "hot", 1)
    env = {
        "RECTIFIER_MAX_BATCH_DELAY_MS": "150",  # requests sit in the old queue at the swap
        "RECTIFIER_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    }
    with running_server(repo, env=env) as server:
        yield server, repo


def predict(client: httpx.Client, image: bytes) -> httpx.Response:
    return client.post(
        "/v1/models/hot/predict", content=image, headers={"Content-Type": "image/png"}
    )


def test_reload_under_load_loses_nothing(
    hot_server: tuple[RunningServer, Path],
    model_repo: dict[str, ExportedModel],
    figures: Callable[[str], None],
) -> None:
    server, repo = hot_server
    image = encode(scene(48, 40, seed=3), "PNG")
    results: list[tuple[float, float, int, int | None]] = []  # start, end, status, version
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                response = predict(client, image)
                version = response.json().get("version") if response.status_code == 200 else None
                results.append((started, time.monotonic(), response.status_code, version))

    # Version 2 is the grayscale model: other labels, so every answer says which served it.
    faults.copy_model(model_repo["gray"].onnx_path, repo, "hot", 2)
    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            reload_started = time.monotonic()
            answer = client.post("/v1/models/hot/reload")
            reload_done = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["versions"] == [2, 1] and body["previous_versions"] == [1]
    statuses = [status for _, _, status, _ in results]
    assert statuses == [200] * len(results), statuses
    before = [v for start, end, _, v in results if end < reload_started]
    after = [v for start, _, _, v in results if start > reload_done]
    # Answered by version 1 after the reload returned: resolved before the swap, in flight
    # during it, and finished on the old session.
    finished_on_old = [v for _, end, _, v in results if end > reload_done and v == 1]
    assert before and set(before) == {1}
    assert after and set(after) == {2}
    assert finished_on_old, "no request was in flight on the old version during the swap"

    logs = server.logs()
    # Loaded and warmed (load_one runs the warm-up) before the swap is logged.
    assert logs.index("loaded hot version 2") < logs.index("reloaded hot")
    deadline = time.monotonic() + BODY_TIMEOUT_S + 15
    while "retired hot:1" not in server.logs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "retired hot:1" in server.logs()
    figures(
        f"\nreload under load: {len(results)} requests, 0 failed, "
        f"{len(finished_on_old)} finished on the old version after the swap"
    )


def test_failing_reload_keeps_the_old_versions(
    hot_server: tuple[RunningServer, Path], model_repo: dict[str, ExportedModel]
) -> None:
    server, repo = hot_server
    image = encode(Image.new("RGB", (40, 40), (90, 160, 30)), "PNG")
    faults.write_random_bytes(repo, "hot", 2)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = predict(client, image).json()
        failed = client.post("/v1/models/hot/reload")
        assert failed.status_code == 409, failed.text
        error = failed.json()["error"]
        assert error["code"] == "reload_failed"
        assert error["detail"]["serving"] == [1]
        assert [f["version"] for f in error["detail"]["failed"]] == [2]
        after = predict(client, image)
        assert after.status_code == 200 and after.json()["version"] == 1
        assert after.json()["predictions"] == before["predictions"]
        listing = client.get("/v1/models/hot").json()
        assert [v["version"] for v in listing["versions"]] == [1]
        # Fixed on disk: the next reload serves it.
        faults.copy_model(model_repo["rgb"].onnx_path, repo, "hot", 2)
        fixed = client.post("/v1/models/hot/reload")
        assert fixed.status_code == 200 and fixed.json()["versions"] == [2, 1]
        assert predict(client, image).json()["version"] == 2
    assert "reload of hot version 2 failed" in server.logs()


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("nosuch", 404, "model_not_found"),
        ("..", 404, "model_not_found"),
        ("%2e%2e", 404, "model_not_found"),
        ("..%2foutside", 404, "not_found"),
        ("hot%00", 404, "model_not_found"),
        ("outside", 404, "model_not_found"),
    ],
)
def test_reload_names_never_leave_the_models_folder(
    hot_server: tuple[RunningServer, Path], name: str, status: int, code: str
) -> None:
    server, repo = hot_server
    # A look-alike model beside the repository: no name may reach it.
    faults.copy_model(repo / "hot" / "1" / "model.onnx", repo.parent, "outside", 1)
    host, _, port = server.url.removeprefix("http://").partition(":")
    # The raw client sends the path as written (httpx would resolve the dot segments).
    response = send_raw(host, int(port), "POST", f"/v1/models/{name}/reload", timeout_s=10)
    assert response.status == status, response.body
    assert response.json()["error"]["code"] == code
    assert "reloaded" not in server.logs()
