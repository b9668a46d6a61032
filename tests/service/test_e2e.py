"""End-to-end: the real server (uvicorn subprocess) answered over HTTP."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest
from PIL import Image

from service.protocols.v1.schemas import ErrorResponse, ModelInfo, ModelList, PredictionResponse
from tests.helpers.images import encode, pattern, png_with_size
from tests.helpers.server import E2E_MAX_UPLOAD_BYTES

pytestmark = pytest.mark.e2e

RGB = "/v1/models/rgb"
JPEG = encode(pattern((64, 48)), "JPEG", quality=92)
PNG = encode(pattern((40, 56), seed=1), "PNG")
WEBP = encode(pattern((50, 50), seed=2), "WEBP", lossless=True)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = ErrorResponse.model_validate(response.json())
    assert body.error.code == code
    assert body.error.request_id == response.headers["x-request-id"]
    return response.json()["error"]


def predict(http: httpx.Client, *images: bytes, path="/v1/models/rgb/predict", **params):
    files = [
        ("image", (f"{i}.img", data, "application/octet-stream")) for i, data in enumerate(images)
    ]
    return http.post(path, files=files, params=params)


def test_multipart_predict_returns_top_k_and_timings(http):
    response = predict(http, JPEG, top_k=2)
    assert response.status_code == 200, response.text
    body = PredictionResponse.model_validate(response.json())
    assert (body.model, body.version, body.task) == ("rgb", 1, "multiclass")
    [prediction] = body.predictions
    assert len(prediction.top_k) == 2
    assert prediction.top_k[0].probability >= prediction.top_k[1].probability
    assert {s.label for s in prediction.top_k} <= {"cat", "dog", "bird"}
    timings = body.timings_ms
    assert timings.total >= timings.inference > 0
    assert timings.decode > 0 and timings.preprocess > 0 and timings.queue >= 0
    header = response.headers["server-timing"]
    for phase in ("decode", "preprocess", "queue", "inference", "total"):
        assert f"{phase};dur=" in header


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream"])
def test_raw_body_predict(http, content_type):
    raw = http.post("/v1/models/rgb/predict", content=JPEG, headers={"Content-Type": content_type})
    multipart = predict(http, JPEG)
    assert raw.status_code == 200, raw.text
    assert raw.json()["predictions"] == multipart.json()["predictions"]


@pytest.mark.parametrize("data", [JPEG, PNG, WEBP], ids=["jpeg", "png", "webp"])
def test_gray_model_accepts_colour_images(http, data):
    response = predict(http, data, path="/v1/models/gray/predict")
    assert response.status_code == 200, response.text
    assert {s["label"] for s in response.json()["predictions"][0]["top_k"]} == {
        "normal",
        "pneumonia",
    }


def test_batch_predict_keeps_image_order(http):
    singles = [predict(http, data).json()["predictions"][0] for data in (JPEG, PNG, WEBP)]
    batch = predict(http, JPEG, PNG, WEBP)
    assert batch.status_code == 200
    assert batch.json()["predictions"] == singles
    assert batch.json()["batch_size"] >= 3


def test_version_and_default_model_routes(http):
    latest = predict(http, PNG).json()["predictions"]
    assert (
        predict(http, PNG, path="/v1/models/rgb/versions/1/predict").json()["predictions"] == latest
    )
    default = predict(http, PNG, path="/v1/predict")
    assert default.json()["model"] == "rgb"
    assert default.json()["predictions"] == latest


def test_top_k_is_clamped_to_the_labels_and_validated(http):
    assert len(predict(http, PNG, top_k=1000).json()["predictions"][0]["top_k"]) == 3
    for bad in ("0", "-2", "many"):
        error = assert_error(predict(http, PNG, top_k=bad), 422, "invalid_parameter")
        assert "top_k" in error["message"]


def test_concurrent_requests_all_succeed(http, e2e_server):
    def one(index: int) -> int:
        data = (JPEG, PNG, WEBP)[index % 3]
        return predict(http, data).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(64)))
    assert statuses == [200] * 64


def test_request_id_is_honoured_or_generated(http):
    echoed = http.get("/livez", headers={"X-Request-ID": "client-id-42"})
    assert echoed.headers["x-request-id"] == "client-id-42"
    generated = http.get("/livez", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] not in ("", "bad id\twith spaces")


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda h: predict(h, JPEG, path="/v1/models/nope/predict"), 404, "model_not_found"),
        (lambda h: predict(h, JPEG, path=f"{RGB}/versions/9/predict"), 404, "version_not_found"),
        (lambda h: predict(h, b"%PDF-1.4 not an image"), 400, "invalid_image"),
        (lambda h: predict(h, JPEG[: len(JPEG) // 2]), 400, "invalid_image"),
        (lambda h: predict(h, b""), 400, "invalid_image"),
        (lambda h: predict(h, png_with_size(30000, 30000)), 413, "image_too_large"),
        (lambda h: predict(h, *([PNG] * 9)), 413, "payload_too_large"),
        (lambda h: h.post(f"{RGB}/predict", files={"photo": ("a", JPEG)}), 400, "missing_image"),
        (lambda h: h.post("/v1/models/rgb/predict"), 400, "missing_image"),
        (
            lambda h: h.post(
                "/v1/models/rgb/predict",
                content=b"--other\r\n\r\nxx\r\n--other--\r\n",
                headers={"Content-Type": "multipart/form-data; boundary=expected"},
            ),
            400,
            "invalid_multipart",
        ),
        (
            lambda h: h.post("/v1/models/rgb/predict", json={"image": "x"}),
            415,
            "unsupported_media_type",
        ),
        (
            lambda h: h.post(
                "/v1/models/rgb/predict",
                content=b"\xff" * (E2E_MAX_UPLOAD_BYTES + 1),
                headers={"Content-Type": "image/jpeg"},
            ),
            413,
            "payload_too_large",
        ),
        (
            lambda h: h.post(
                "/v1/models/rgb/predict",
                content=iter([b"\xff" * 100_000] * 4),  # chunked: no Content-Length
                headers={"Content-Type": "image/jpeg"},
            ),
            413,
            "payload_too_large",
        ),
        (lambda h: h.get("/v1/no/such/route"), 404, "not_found"),
        (lambda h: h.get("/v1/models/rgb/predict"), 405, "method_not_allowed"),
        (lambda h: h.get("/v1/models/rgb/versions/x"), 422, "invalid_parameter"),
    ],
    ids=[
        "unknown-model", "unknown-version", "pdf", "truncated-jpeg", "zero-bytes", "bomb",
        "too-many-images", "wrong-field", "no-body", "wrong-boundary", "json-body",
        "over-limit", "over-limit-chunked", "no-route", "wrong-method", "bad-version",
    ],
)  # fmt: skip
def test_errors_have_one_shape_and_the_right_code(http, make, status, code):
    assert_error(make(http), status, code)


def test_not_found_errors_list_what_exists(http):
    error = assert_error(
        predict(http, JPEG, path="/v1/models/nope/predict"), 404, "model_not_found"
    )
    assert error["detail"]["models"] == ["gray", "rgb"]
    error = assert_error(
        predict(http, JPEG, path="/v1/models/rgb/versions/7/predict"), 404, "version_not_found"
    )
    assert error["detail"]["versions"] == [1]


def test_invalid_image_in_a_batch_names_the_image(http):
    error = assert_error(predict(http, JPEG, b"hello", PNG), 400, "invalid_image")
    assert error["message"].startswith("image 2 of 3:")


def test_server_still_serves_after_errors(http):
    predict(http, b"garbage")
    assert predict(http, JPEG).status_code == 200


def test_probes(http):
    assert http.get("/livez").json() == {"status": "alive"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert sorted(ready.json()["models"]) == ["gray:1", "rgb:1"]


def test_models_listing(http):
    predict(http, JPEG)
    listing = ModelList.model_validate(http.get("/v1/models").json())
    assert [m.name for m in listing.models] == ["gray", "rgb"]
    rgb = ModelInfo.model_validate(http.get("/v1/models/rgb").json())
    [version] = rgb.versions
    assert version.providers == ["CPUExecutionProvider"]
    assert version.input_shape == [-1, 3, 32, 32]
    assert version.card["labels"] == ["cat", "dog", "bird"]
    assert version.batching.max_batch_size == 32
    assert version.latency_ms.count >= 1 and version.latency_ms.p50 is not None
    assert http.get("/v1/models/rgb/versions/1").json()["version"] == 1
    assert_error(http.get("/v1/models/nope"), 404, "model_not_found")


def test_metrics(http):
    predict(http, PNG, path="/v1/models/gray/predict")
    predict(http, b"junk", path="/v1/models/gray/predict")
    text = http.get("/metrics").text
    assert 'rectifier_predictions_total{model="gray",status="200",version="1"}' in text
    assert 'rectifier_predictions_total{model="gray",status="400",version="1"}' in text
    for phase in ("decode", "preprocess", "queue", "inference", "total"):
        assert f'rectifier_phase_seconds_count{{model="gray",phase="{phase}"}}' in text
    assert 'rectifier_batch_size_count{model="gray"}' in text
    assert 'rectifier_queue_depth{model="gray",version="1"} 0.0' in text
    assert 'rectifier_model_info{model="gray",providers="CPUExecutionProvider"' in text
    assert 'rectifier_model_load_seconds{model="gray",version="1"}' in text
    assert 'rectifier_http_requests_total{method="POST",route="/v1/models/{name}/predict"' in text


def test_openapi_documents_the_api(http):
    schema = http.get("/openapi.json").json()
    body = schema["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/*" in body
    assert http.get("/docs").status_code == 200


def test_exif_rotated_upload_differs_from_unrotated(http):
    exif = Image.Exif()
    exif[0x0112] = 8
    image = pattern((64, 32), seed=5)
    with_exif = encode(image, "JPEG", quality=95, exif=exif)
    without = encode(image, "JPEG", quality=95)
    a = predict(http, with_exif, top_k=3).json()["predictions"]
    b = predict(http, without, top_k=3).json()["predictions"]
    assert a != b
