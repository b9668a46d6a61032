"""End to end over raw HTTP: what tritonclient cannot send or does not show.

Hostile V2 bodies get clean 4xx answers in V2's ``{"error": "..."}`` shape and the server
serves normally right after; headers (``Server-Timing``, ``Inference-Header-Content-Length``)
are there; V2 and ``/v1`` requests share one dynamic batcher; API keys guard V2 inference but
not its probes.
"""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers.images import encode, pattern
from tests.helpers.server import SMALL_POOLS_ENV as SERVER_ENV
from tests.helpers.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

INFER = "/v2/models/rgb/infer"
GOOD = np.zeros((1, 3, 32, 32), dtype=np.float32)


def binary_body(
    array: np.ndarray, size: int | None = None, tail: bytes | None = None
) -> tuple[bytes, dict[str, str]]:
    spec = {
        "name": "image",
        "datatype": "FP32",
        "shape": list(array.shape),
        "parameters": {"binary_data_size": array.nbytes if size is None else size},
    }
    header = json.dumps({"inputs": [spec]}).encode()
    data = array.tobytes() if tail is None else tail
    return header + data, {"Inference-Header-Content-Length": str(len(header))}


def json_body(data: object, shape: list[int] | None = None) -> bytes:
    spec = {"name": "image", "datatype": "FP32", "shape": shape or [1, 3, 32, 32], "data": data}
    return json.dumps({"inputs": [spec]}).encode()


def post(
    server: RunningServer, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(server.url + INFER, content=body, headers=headers or {}, timeout=30)


def assert_v2_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    assert words in body["error"], body["error"]


def test_a_good_binary_request_has_timing_and_length_headers(server: RunningServer) -> None:
    body, headers = binary_body(GOOD)
    response = post(server, body, {**headers, "Content-Type": "application/octet-stream"})
    assert response.status_code == 200
    assert response.headers["Server-Timing"].startswith("decode;dur=")
    # No outputs listed and no binary_data_output: JSON outputs, no length header.
    assert "Inference-Header-Content-Length" not in response.headers
    assert response.json()["outputs"][0]["shape"] == [1, 3]


def test_binary_output_response_is_split_by_the_length_header(server: RunningServer) -> None:
    document = {
        "inputs": [
            {"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0.0] * 3072}
        ],
        "parameters": {"binary_data_output": True},
    }
    response = httpx.post(server.url + INFER, content=json.dumps(document), timeout=30)
    assert response.status_code == 200
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.content[:length])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 12
    probabilities = np.frombuffer(response.content[length:], dtype="<f4")
    assert probabilities.shape == (3,) and abs(float(probabilities.sum()) - 1.0) < 1e-5


HOSTILE = [
    pytest.param(
        *binary_body(GOOD, size=GOOD.nbytes + 100),
        400,
        "only 12288 bytes",
        id="size-larger-than-body",
    ),
    pytest.param(
        *binary_body(GOOD, size=GOOD.nbytes - 4),
        400,
        "4 bytes of binary data",
        id="size-smaller-than-body",
    ),
    pytest.param(
        *binary_body(GOOD, size=-1), 400, "non-negative integer, got -1", id="negative-size"
    ),
    pytest.param(
        *binary_body(np.full((1, 3, 32, 32), np.nan, np.float32)), 400, "3072 NaN", id="nan-binary"
    ),
    pytest.param(
        *binary_body(np.full((1, 3, 32, 32), np.inf, np.float32)),
        400,
        "NaN or infinite",
        id="inf-binary",
    ),
    pytest.param(
        *binary_body(np.zeros((1, 3, 31, 32), np.float32)),
        400,
        "got [1, 3, 31, 32]",
        id="wrong-shape",
    ),
    pytest.param(json_body([0.0] * 3071), {}, 400, "holds 3071 element(s)", id="short-json-data"),
    pytest.param(
        json_body([1e39] + [0.0] * 3071), {}, 400, "outside the FP32 range", id="inf-json"
    ),
    pytest.param(b'{"inputs": [{"data": [NaN]}]}', {}, 400, "not valid JSON", id="nan-literal"),
    pytest.param(
        json_body([0] * 3072),
        {"Inference-Header-Content-Length": "-3"},
        400,
        "non-negative integer",
        id="negative-header-length",
    ),
    pytest.param(
        json_body([0] * 3072),
        {"Inference-Header-Content-Length": "999999"},
        400,
        "says the JSON header is 999999",
        id="header-length-past-body",
    ),
    pytest.param(b"", {}, 400, "body is empty", id="empty-body"),
    pytest.param(b"\x00\xff" * 50, {}, 400, "not valid JSON", id="binary-garbage"),
    pytest.param(
        json_body([0.0] * 3072),
        {"Content-Encoding": "br"},
        415,
        "unsupported Content-Encoding",
        id="brotli",
    ),
    pytest.param(
        gzip.compress(b" " * 30_000_000),
        {"Content-Encoding": "gzip"},
        413,
        "exceeds the limit",
        id="gzip-bomb",
    ),
    pytest.param(
        b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}, 400, "not valid gzip", id="bad-gzip"
    ),
]


@pytest.mark.parametrize(("body", "headers", "status", "words"), HOSTILE)
def test_hostile_requests_get_clean_v2_errors_and_the_server_goes_on(
    server: RunningServer, body: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    assert_v2_error(post(server, body, headers), status, words)
    good, good_headers = binary_body(GOOD)
    assert post(server, good, good_headers).status_code == 200


def test_framework_errors_under_v2_use_the_v2_shape(server: RunningServer) -> None:
    assert_v2_error(httpx.get(server.url + "/v2/nothing/here"), 404, "no route for GET")
    assert_v2_error(httpx.get(server.url + INFER), 405, "GET is not allowed")
    assert_v2_error(httpx.get(server.url + "/v2/models/rgb/versions/x"), 404, "no version 'x'")
    # The image API keeps its own error shape.
    v1 = httpx.get(server.url + "/v1/models/nope")
    assert v1.status_code == 404 and v1.json()["error"]["code"] == "model_not_found"


def test_v2_inferences_are_counted_in_metrics(server: RunningServer) -> None:
    def count() -> float:
        for line in httpx.get(server.url + "/metrics").text.splitlines():
            if line.startswith('rectifier_predictions_total{model="rgb",status="200",version="1"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    body, headers = binary_body(GOOD)
    assert post(server, body, headers).status_code == 200
    assert count() == before + 1


@pytest.fixture(scope="module")
def guarded_server(model_repo_dir: Path) -> Iterator[RunningServer]:
    """API keys on, and a batch delay long enough that concurrent requests share a batch."""
    env = {
        **SERVER_ENV,
        "RECTIFIER_API_KEYS": "v2-test-key-0001",
        "RECTIFIER_MAX_BATCH_DELAY_MS": "1000",
    }
    with running_server(model_repo_dir, env=env) as running:
        yield running


AUTH = {"Authorization": "Bearer v2-test-key-0001"}


def test_api_keys_guard_inference_and_metadata_but_not_probes(
    guarded_server: RunningServer,
) -> None:
    url = guarded_server.url
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/rgb/ready"):
        assert httpx.get(url + path).status_code == 200, path
    missing = httpx.get(url + "/v2/models/rgb")
    assert_v2_error(missing, 401, "needs an API key")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    body, headers = binary_body(GOOD)
    assert_v2_error(httpx.post(url + INFER, content=body, headers=headers), 401, "API key")
    assert httpx.get(url + "/v2/models/rgb", headers=AUTH).status_code == 200


def test_v2_and_v1_requests_share_the_dynamic_batcher(guarded_server: RunningServer) -> None:
    url = guarded_server.url
    body, headers = binary_body(GOOD)
    image = encode(pattern(), "PNG")
    answers: dict[str, httpx.Response] = {}

    def v2() -> None:
        answers["v2"] = httpx.post(
            url + INFER, content=body, headers={**headers, **AUTH}, timeout=30
        )

    def v1() -> None:
        answers["v1"] = httpx.post(
            url + "/v1/models/rgb/predict",
            files={"image": ("a.png", image)},
            headers=AUTH,
            timeout=30,
        )

    threads = [threading.Thread(target=v2), threading.Thread(target=v1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers["v2"].status_code == 200 and answers["v1"].status_code == 200
    # One session.run of two rows: one row from each protocol.
    assert answers["v2"].json()["parameters"]["batch_size"] == 2
    assert answers["v1"].json()["batch_size"] == 2


def test_readiness_turns_503_at_sigterm_while_liveness_stays(model_repo_dir: Path) -> None:
    env = {**SERVER_ENV, "RECTIFIER_SHUTDOWN_DELAY_S": "3"}
    with running_server(model_repo_dir, env=env) as server:
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        # During the shutdown delay the listener is still open: probes say "going away".
        deadline = time.monotonic() + 2.0
        while httpx.get(server.url + "/v2/health/ready").status_code == 200:
            assert time.monotonic() < deadline, "readiness stayed 200 after SIGTERM"
            time.sleep(0.02)
        assert_v2_error(httpx.get(server.url + "/v2/health/ready"), 503, "shutting down")
        assert_v2_error(httpx.get(server.url + "/v2/models/rgb/ready"), 503, "shutting down")
        assert httpx.get(server.url + "/v2/health/live").status_code == 200
        assert server.process.wait(30) == 0
