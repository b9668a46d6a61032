"""The load generator's Open Inference Protocol requests (``rectifier bench --protocol``)
are real V2 requests: the service answers them like the image API (top 5 classes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app.factory import create_app
from service.app.state import state_of
from service.loadgen import client as loadgen
from service.loadgen.client import Protocol
from service.plumbing.settings import Settings
from tests.helpers.images import encode, pattern


@pytest.mark.parametrize("protocol", [Protocol.V2_BINARY, Protocol.V2_JSON])
def test_v2_requests_are_answered_with_the_top_classes(
    protocol: Protocol, model_repo_dir: Path, tmp_path: Path
) -> None:
    image = tmp_path / "sample.png"
    image.write_bytes(encode(pattern(), "PNG"))
    target = loadgen.parse_target("http://127.0.0.1:8000", "/v2/models/rgb/infer")
    raw = loadgen.build_image_request(target, image, protocol=protocol)
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == "POST /v2/models/rgb/infer HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers.pop("Content-Length")) == len(body)
    with TestClient(create_app(Settings(models_dir=model_repo_dir))) as client:
        deadline = time.monotonic() + 30
        while state_of(client.app).repository.state == "loading":  # type: ignore[union-attr,arg-type]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        answer = client.post(target.path, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["name"] == "probabilities"
    assert output["datatype"] == "BYTES"
    scores = [float(entry.split(":")[0]) for entry in output["data"]]
    assert scores == sorted(scores, reverse=True) and 0 < len(scores) <= 5
