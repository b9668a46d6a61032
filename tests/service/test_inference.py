"""The shared inference path: V1 (predict and explain) and V2 requests are admitted
against one bound.

A real server with one decode thread and a queue bound of 4 gets a burst of encoded-image
requests whose decoding is slow (large PNGs): the requests waiting for the decode pool hold
places in the bound, so the excess is refused at once with 503 ``queue_full`` and
``Retry-After``, over V2 exactly as over V1.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from tests.helpers.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

BOUND = 4
BURST = 16


@pytest.fixture(scope="module")
def slow_decode_server(model_repo_dir: Path) -> Iterator[RunningServer]:
    env = {
        "RECTIFIER_MAX_QUEUE": str(BOUND),
        "RECTIFIER_DECODE_THREADS": "1",
        "RECTIFIER_MAX_BATCH_SIZE": "1",
        "RECTIFIER_RETRY_AFTER_S": "3",
        "RECTIFIER_ACCESS_LOG": "false",
    }
    with running_server(model_repo_dir, env=env) as server:
        yield server


def slow_png() -> bytes:
    """A 2400 x 2400 PNG: a small upload that takes tens of milliseconds to decode."""
    rng = np.random.default_rng(3)
    tile = rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)
    pixels = np.tile(tile, (150, 150, 1))
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


IMAGE = slow_png()


def v1_request(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/v1/models/rgb/predict", content=IMAGE, headers={"Content-Type": "image/png"}
    )


def explain_request(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/v1/models/rgb/explain", content=IMAGE, headers={"Content-Type": "image/png"}
    )


def v2_request(client: httpx.Client) -> httpx.Response:
    body = {
        "inputs": [
            {
                "name": "encoded_image",
                "datatype": "BYTES",
                "shape": [1],
                "data": [base64.b64encode(IMAGE).decode()],
            }
        ]
    }
    return client.post(
        "/v2/models/rgb/infer",
        content=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
    )


def burst(
    server: RunningServer, send: Callable[[httpx.Client], httpx.Response]
) -> list[httpx.Response]:
    """``BURST`` requests released together, one connection each."""
    clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(BURST)]
    for client in clients:  # connect first, so the requests arrive together
        assert client.get("/livez").status_code == 200
    start = threading.Barrier(BURST)

    def one(client: httpx.Client) -> httpx.Response:
        start.wait()
        return send(client)

    try:
        with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
            return list(pool.map(one, clients))
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize(
    "send", [v1_request, explain_request, v2_request], ids=["v1", "v1-explain", "v2"]
)
def test_a_flood_of_slow_decodes_is_refused_at_the_same_bound(
    slow_decode_server: RunningServer, send: Callable[[httpx.Client], httpx.Response]
) -> None:
    responses = burst(slow_decode_server, send)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    refused = [r for r in responses if r.status_code == 503]
    # One decode thread, a bound of 4: most of a simultaneous burst of 16 must be refused.
    assert len(refused) >= BURST - 2 * BOUND, statuses
    assert statuses.count(200) >= 1, statuses
    for response in refused:
        if send is v2_request:
            assert "the queue of model rgb:1 is full" in response.json()["error"]
        else:
            assert response.json()["error"]["code"] == "queue_full"
        assert response.headers["retry-after"] == "3"
