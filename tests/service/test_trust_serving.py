"""Calibrated probabilities, ``ood_score`` and ``in_distribution`` over HTTP (V1, V2,
explain, metrics), on the committed demo model; cards without trust serve as before."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from model.card import ModelCard, read_card
from model.decoding import load_and_preprocess
from model.trust import TrustStats, ood_scores, softmax
from service.app.factory import create_app
from service.plumbing.settings import Settings
from tests.helpers.app import wait_loaded

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo" / "1"
SIGN = ROOT / "examples" / "images" / "stop.jpg"
PNG = {"Content-Type": "image/png"}


def smooth_field(seed: int = 0) -> bytes:
    """A photograph stand-in: a smooth colour field, nothing like a traffic sign."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.resize((96, 96), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def repo(model_repo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``demo`` (trust), ``plain`` (no trust), ``nostats`` (its statistics file missing) and
    ``wrongstats`` (another model's statistics file)."""
    root = tmp_path_factory.mktemp("trust-repo")
    shutil.copytree(DEMO, root / "demo" / "1")
    shutil.copytree(model_repo["rgb"].onnx_path.parents[1], root / "plain")
    shutil.copytree(DEMO, root / "nostats" / "1")
    (root / "nostats" / "1" / "ood_stats.npz").unlink()
    shutil.copytree(DEMO, root / "wrongstats" / "1")
    stats = TrustStats.load(DEMO / "ood_stats.npz")
    changed = TrustStats(
        stats.class_means + 1, stats.precision, stats.clip, stats.weight, stats.bias
    )
    (root / "wrongstats" / "1" / "ood_stats.npz").write_bytes(changed.to_bytes())
    return root


@pytest.fixture(scope="module")
def client(repo: Path):
    with TestClient(create_app(Settings(models_dir=repo))) as client:
        wait_loaded(client)
        yield client


def reference(image: bytes) -> tuple[np.ndarray, float]:
    """The demo's calibrated probabilities and OOD score, from onnxruntime and NumPy."""
    card = read_card(DEMO / "model.onnx")
    assert card.trust is not None and card.trust.ood is not None
    tensor = _preprocess(image, card)
    session = ort.InferenceSession(str(DEMO / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities, logits, features = session.run(
        ["probabilities", "logits", "features"], {"image": tensor[None]}
    )
    np.testing.assert_allclose(
        probabilities, softmax(logits, card.trust.calibration.temperature), atol=1e-6
    )
    stats = TrustStats.load(DEMO / "ood_stats.npz")
    return probabilities[0], float(ood_scores(card.trust.ood.scorer, logits, features, stats)[0])


def _preprocess(image: bytes, card: ModelCard) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(image)
        handle.flush()
        return load_and_preprocess(handle.name, card.preprocessing)


def test_v1_predictions_carry_the_score_and_the_calibrated_probabilities(
    client: TestClient,
) -> None:
    threshold = read_card(DEMO / "model.onnx").trust.ood.threshold  # type: ignore[union-attr]
    for image, inside in ((SIGN.read_bytes(), True), (smooth_field(), False)):
        response = client.post(
            "/v1/models/demo/predict?top_k=8", content=image, headers={"Content-Type": "image/*"}
        )
        assert response.status_code == 200, response.text
        (prediction,) = response.json()["predictions"]
        assert prediction["in_distribution"] is inside
        assert (prediction["ood_score"] <= threshold) is inside
        probabilities, score = reference(image)
        assert prediction["ood_score"] == pytest.approx(score, rel=1e-4)
        for entry in prediction["top_k"]:
            assert entry["probability"] == pytest.approx(probabilities[entry["index"]], abs=1e-4)
        assert ("notice" in prediction) is not inside


def test_a_card_without_trust_serves_as_before(client: TestClient) -> None:
    image = smooth_field()
    response = client.post("/v1/models/plain/predict", content=image, headers=PNG)
    assert response.status_code == 200
    (prediction,) = response.json()["predictions"]
    assert set(prediction) == {"top_k"}
    info = client.get("/v1/models/plain").json()["versions"][0]
    assert info["trust"] is None


def test_model_info_says_what_the_model_has(client: TestClient) -> None:
    info = client.get("/v1/models/demo").json()["versions"][0]
    trust = info["trust"]
    assert trust["calibrated"] is True and trust["ood_scorer"] == "mahalanobis"
    assert trust["temperature"] >= 1.0 and isinstance(trust["ood_threshold"], float)


def test_missing_or_mismatched_statistics_fail_the_load_naming_the_file(
    client: TestClient,
) -> None:
    failed = {f["model"]: f["reason"] for f in client.get("/v1/models").json()["failed"]}
    assert "ood_stats.npz" in failed["nostats"] and "missing" in failed["nostats"]
    assert "ood_stats.npz" in failed["wrongstats"] and "sha256" in failed["wrongstats"]


def test_v2_returns_the_score_and_the_flag(client: TestClient) -> None:
    document = {
        "inputs": [
            {
                "name": "encoded_image",
                "datatype": "BYTES",
                "shape": [2],
                "data": [
                    base64.b64encode(SIGN.read_bytes()).decode(),
                    base64.b64encode(smooth_field()).decode(),
                ],
            }
        ]
    }
    response = client.post("/v2/models/demo/infer", content=json.dumps(document))
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["ood_score"]["datatype"] == "FP32" and outputs["ood_score"]["shape"] == [2]
    assert outputs["in_distribution"]["datatype"] == "BOOL"
    assert outputs["in_distribution"]["data"] == [True, False]
    _, score = reference(SIGN.read_bytes())
    assert outputs["ood_score"]["data"][0] == pytest.approx(score, rel=1e-4)
    metadata = client.get("/v2/models/demo").json()
    assert [o["name"] for o in metadata["outputs"]] == [
        "probabilities",
        "ood_score",
        "in_distribution",
    ]
    document["outputs"] = [{"name": "in_distribution"}]
    only = client.post("/v2/models/demo/infer", content=json.dumps(document)).json()
    assert [o["name"] for o in only["outputs"]] == ["in_distribution"]
    document["outputs"] = [{"name": "ood_score"}]
    plain = client.post("/v2/models/plain/infer", content=json.dumps(document))
    assert plain.status_code == 400


def test_metrics_count_the_score_and_out_of_distribution_answers(client: TestClient) -> None:
    client.post("/v1/models/demo/predict", content=smooth_field(3), headers=PNG)
    text = client.get("/metrics").text
    assert 'rectifier_ood_score_bucket{le="+Inf",model="demo"}' in text or (
        'rectifier_ood_score_bucket{model="demo",le="+Inf"}' in text
    )
    assert 'rectifier_out_of_distribution_total{model="demo"}' in text


def test_explain_shows_the_notice_out_of_distribution(client: TestClient) -> None:
    response = client.post("/v1/models/demo/explain", content=smooth_field(5), headers=PNG)
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert prediction["in_distribution"] is False and "unlike the images" in prediction["notice"]


def test_v2_binary_outputs_carry_the_flag_as_one_byte_per_image(client: TestClient) -> None:
    images = [SIGN.read_bytes(), smooth_field(1)]
    document = {
        "inputs": [
            {
                "name": "encoded_image",
                "datatype": "BYTES",
                "shape": [2],
                "data": [base64.b64encode(i).decode() for i in images],
            }
        ],
        "outputs": [{"name": "ood_score"}, {"name": "in_distribution"}],
        "parameters": {"binary_data_output": True},
    }
    response = client.post("/v2/models/demo/infer", content=json.dumps(document))
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [8, 2]
    body = response.content[length:]
    scores = np.frombuffer(body[:8], "<f4")
    flags = np.frombuffer(body[8:], np.uint8).astype(bool)
    assert flags.tolist() == [True, False]
    assert scores[0] == pytest.approx(reference(images[0])[1], rel=1e-4)
