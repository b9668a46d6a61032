"""``POST /v1/models/{name}[/versions/{version}]/explain`` on the real app (TestClient)."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from model.cam_file import explain_file
from model.card import card_from_metadata, write_card
from service.app.factory import create_app
from service.plumbing.settings import Settings
from tests.helpers.app import wait_loaded
from tests.helpers.images import encode, pattern

PNG = encode(pattern(), "PNG")
PNG_HEADERS = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def repo(model_repo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rgb`` and ``gray`` with class maps, and ``old``: rgb's graph with a card from before
    explanations (no class_activation_maps), as older exports are."""
    root = tmp_path_factory.mktemp("explain-repo")
    for name in ("rgb", "gray"):
        shutil.copytree(model_repo[name].onnx_path.parents[1], root / name)
    proto = onnx.load(str(model_repo["rgb"].onnx_path))
    card = card_from_metadata({p.key: p.value for p in proto.metadata_props})
    write_card(proto, card.model_copy(update={"name": "old", "class_activation_maps": None}))
    (root / "old" / "1").mkdir(parents=True)
    onnx.save(proto, str(root / "old" / "1" / "model.onnx"))
    return root


@pytest.fixture(scope="module")
def client(repo: Path):
    with TestClient(create_app(Settings(models_dir=repo))) as client:
        wait_loaded(client)
        yield client


def test_explain_answers_predictions_heatmaps_and_timings(client: TestClient) -> None:
    response = client.post("/v1/models/rgb/explain", content=PNG, headers=PNG_HEADERS)
    assert response.status_code == 200, response.text
    body = response.json()
    predicted = client.post("/v1/models/rgb/predict", content=PNG, headers=PNG_HEADERS).json()
    assert body["predictions"] == predicted["predictions"]
    assert (body["model"], body["version"], body["method"]) == ("rgb", 1, "cam")
    (explanation,) = body["explanations"]
    top = body["predictions"][0]["top_k"][0]
    assert (explanation["label"], explanation["index"]) == (top["label"], top["index"])
    assert explanation["probability"] == pytest.approx(top["probability"])
    grid = np.array(explanation["grid"])
    assert explanation["grid_size"] == [8, 8] == list(grid.shape)
    assert grid.min() >= 0.0 and grid.max() == pytest.approx(1.0, abs=1e-4)
    assert set(body["timings_ms"]) == {
        "decode", "preprocess", "queue", "inference", "explain", "total"
    }  # fmt: skip
    assert "explain;dur=" in response.headers["server-timing"]


def test_the_grid_is_the_one_the_cli_draws(client: TestClient, repo: Path, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    for label in ("dog", "bird"):
        response = client.post(
            "/v1/models/rgb/versions/1/explain",
            params={"label": label},
            files=[("image", ("a.png", PNG, "image/png"))],
        )
        assert response.status_code == 200, response.text
        (explanation,) = response.json()["explanations"]
        assert explanation["label"] == label
        local = explain_file(image, repo / "rgb", label=label, out=tmp_path / "o.png")
        np.testing.assert_allclose(explanation["grid"], local.grid, atol=1e-4)


def test_a_batch_gets_one_explanation_per_image(client: TestClient) -> None:
    files = [("image", (f"{i}.png", encode(pattern(seed=i), "PNG"), "image/png")) for i in range(3)]
    response = client.post("/v1/models/gray/explain", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["explanations"]) == len(body["predictions"]) == 3
    for explanation, prediction in zip(body["explanations"], body["predictions"], strict=True):
        assert explanation["label"] == prediction["top_k"][0]["label"]


@pytest.mark.parametrize(
    ("params", "accept"),
    [({"format": "png"}, None), ({}, "image/png"), ({"format": "png", "opacity": 0.9}, None)],
    ids=["format", "accept", "opacity"],
)
def test_the_overlay_comes_as_png(client: TestClient, params, accept) -> None:
    headers = {**PNG_HEADERS, **({"Accept": accept} if accept else {})}
    response = client.post("/v1/models/rgb/explain", params=params, content=PNG, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-explained-label"] in ("cat", "dog", "bird")
    assert 0.0 <= float(response.headers["x-explained-probability"]) <= 1.0
    assert "explain;dur=" in response.headers["server-timing"]
    with Image.open(io.BytesIO(response.content)) as picture:
        assert (picture.format, picture.size) == ("PNG", (256, 256))


def test_json_stays_the_default_for_browsers(client: TestClient) -> None:
    headers = {**PNG_HEADERS, "Accept": "application/json, image/png"}
    response = client.post("/v1/models/rgb/explain", content=PNG, headers=headers)
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("params", "files", "message"),
    [
        ({"label": "fish"}, 1, "label 'fish' is not one of model rgb's labels: cat, dog, bird"),
        ({"format": "gif"}, 1, "format must be json or png, got 'gif'"),
        ({"format": "png"}, 2, "format=png draws one overlay and takes exactly one image; got 2"),
        ({"opacity": 2}, 1, "opacity"),
    ],
    ids=["label", "format", "png-batch", "opacity"],
)
def test_bad_parameters_are_422_naming_them(client: TestClient, params, files, message) -> None:
    upload = [("image", (f"{i}.png", PNG, "image/png")) for i in range(files)]
    response = client.post("/v1/models/rgb/explain", params=params, files=upload)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert message in str(error)


def test_a_model_exported_without_maps_is_409_with_the_reason(client: TestClient) -> None:
    response = client.post("/v1/models/old/explain", content=PNG, headers=PNG_HEADERS)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_explainable"
    assert error["message"].startswith("model old version 1 (simple_cnn) has no class-activation")
    assert "re-export it with `rectifier export`" in error["message"]
    assert error["detail"] == {"model": "old", "version": 1}
    # It still predicts.
    assert client.post("/v1/models/old/predict", content=PNG, headers=PNG_HEADERS).is_success


def test_explanations_are_counted_in_the_metrics(client: TestClient) -> None:
    def count(model: str, status: int) -> float:
        wanted = {"model": model, "version": "1", "status": str(status)}
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("rectifier_predictions_total{"):
                labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
                if labels == wanted:
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count("rgb", 200), count("old", 409)
    client.post("/v1/models/rgb/explain", content=PNG, headers=PNG_HEADERS)
    client.post("/v1/models/old/explain", content=PNG, headers=PNG_HEADERS)
    assert (count("rgb", 200), count("old", 409)) == (before[0] + 1, before[1] + 1)
