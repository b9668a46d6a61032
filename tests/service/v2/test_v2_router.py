"""The /v2 routes as the OpenAPI schema documents them (what /docs and schemathesis read)."""

from __future__ import annotations

from typing import Any

import pytest

from service.app.factory import create_app
from service.plumbing.settings import Settings


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(Settings(models_dir=tmp_path_factory.mktemp("empty-repository")))
    return app.openapi()


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/v2", "ServerMetadataResponse"),
        ("/v2/health/live", "LiveResponse"),
        ("/v2/health/ready", "ReadyResponse"),
        ("/v2/models/{name}", "ModelMetadataResponse"),
        ("/v2/models/{name}/versions/{version}", "ModelMetadataResponse"),
        ("/v2/models/{name}/ready", "ModelReadyResponse"),
        ("/v2/models/{name}/versions/{version}/ready", "ModelReadyResponse"),
    ],
)
def test_get_routes_document_their_body(openapi: dict[str, Any], path: str, model: str) -> None:
    responses = openapi["paths"][path]["get"]["responses"]
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{model}"
    }
    for status in ("404", "503"):
        error = responses[status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/V2ErrorResponse"}


@pytest.mark.parametrize(
    "path", ["/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"]
)
def test_infer_documents_both_body_layouts(openapi: dict[str, Any], path: str) -> None:
    operation = openapi["paths"][path]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/json"]["schema"]["required"] == ["inputs"]
    assert content["application/octet-stream"]["schema"]["format"] == "binary"
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }
    assert {"400", "404", "413", "415", "503"} <= set(operation["responses"])


def test_no_other_v2_routes(openapi: dict[str, Any]) -> None:
    v2 = sorted(path for path in openapi["paths"] if path.startswith("/v2"))
    assert v2 == [
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/infer",
        "/v2/models/{name}/versions/{version}/ready",
    ]


def test_every_v2_error_has_one_shape() -> None:
    import asyncio

    import orjson
    from starlette.requests import Request

    from service.plumbing.errors import APIError
    from service.protocols.v2.errors import V2Error
    from service.protocols.v2.routes import render_api_error, render_codec_error

    request = Request({"type": "http", "method": "POST", "path": "/v2/models/rgb/infer"})
    codec = asyncio.run(render_codec_error(request, V2Error('bad "shape"', 415)))
    full = render_api_error(request, APIError("queue_full", "full", headers={"Retry-After": "1"}))
    bad = render_api_error(request, APIError("invalid_parameter", "bad"))
    assert [r.status_code for r in (codec, full, bad)] == [415, 503, 400]
    assert [orjson.loads(bytes(r.body)) for r in (codec, full, bad)] == [
        {"error": 'bad "shape"'},
        {"error": "full"},
        {"error": "bad"},
    ]
    assert full.headers["retry-after"] == "1"
    assert {r.headers["content-type"] for r in (codec, full, bad)} == {"application/json"}
