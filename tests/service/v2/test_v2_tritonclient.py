"""End to end: the official ``tritonclient.http`` against the real server on 127.0.0.1.

One server (uvicorn in a subprocess, ``tests.helpers.server``; the package's ``server`` fixture)
serves the shared ``rgb`` and ``gray`` models; every call goes over HTTP exactly as a Triton
user's would, with the client's defaults unless a test says otherwise.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from model.card import ModelCard, read_card
from model.decoding import load_and_preprocess
from tests.helpers.images import encode, pattern
from tests.helpers.models import ExportedModel
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.e2e

ATOL = 1e-6


@pytest.fixture(scope="module")
def cards(model_repo: dict[str, ExportedModel]) -> dict[str, ModelCard]:
    return {name: read_card(model.onnx_path) for name, model in model_repo.items()}


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A JPEG and a PNG of different sizes and aspect ratios (resize and crop both matter)."""
    folder = tmp_path_factory.mktemp("v2-images")
    files = [folder / "a.jpg", folder / "b.png"]
    files[0].write_bytes(encode(pattern((64, 48), seed=1), "JPEG", quality=92))
    files[1].write_bytes(encode(pattern((40, 70), seed=2), "PNG"))
    return files


def preprocessed(files: list[Path], card: ModelCard) -> np.ndarray:
    return np.stack([load_and_preprocess(str(f), card.preprocessing) for f in files])


def tensor_input(batch: np.ndarray, binary: bool = True) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    return tensor


def image_input(files: list[Path], shape: list[int] | None = None) -> httpclient.InferInput:
    data = np.array([f.read_bytes() for f in files], dtype=np.object_)
    images = httpclient.InferInput("encoded_image", shape or [len(files)], "BYTES")
    images.set_data_from_numpy(data.reshape(shape or [len(files)]))
    return images


def v1_probabilities(server: RunningServer, name: str, files: list[Path]) -> np.ndarray:
    """The same files through the image API, as (N, classes) in label order."""
    multipart = [("image", (f.name, f.read_bytes())) for f in files]
    response = httpx.post(
        f"{server.url}/v1/models/{name}/predict", files=multipart, params={"top_k": 100}
    )
    response.raise_for_status()
    rows = []
    for prediction in response.json()["predictions"]:
        row = np.zeros(len(prediction["top_k"]), dtype=np.float32)
        for entry in prediction["top_k"]:
            row[entry["index"]] = entry["probability"]
        rows.append(row)
    return np.stack(rows)


def test_health_and_readiness(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("rgb") and client.is_model_ready("gray", "1")
    assert not client.is_model_ready("no-such-model")
    assert not client.is_model_ready("rgb", "9")


def test_server_metadata(client: httpclient.InferenceServerClient) -> None:
    metadata = client.get_server_metadata()
    assert metadata["name"] == "rectifier" and metadata["version"]
    assert {"binary_tensor_data", "classification"} <= set(metadata["extensions"])


@pytest.mark.parametrize(("name", "channels", "classes"), [("rgb", 3, 3), ("gray", 1, 2)])
def test_model_metadata(
    client: httpclient.InferenceServerClient, name: str, channels: int, classes: int
) -> None:
    for metadata in (client.get_model_metadata(name), client.get_model_metadata(name, "1")):
        assert metadata["name"] == name and metadata["versions"] == ["1"]
        assert metadata["platform"] == "onnx_onnxv1"
        assert metadata["inputs"][0] == {
            "name": "image",
            "datatype": "FP32",
            "shape": [-1, channels, 32, 32],
        }
        assert metadata["inputs"][1] == {
            "name": "encoded_image",
            "datatype": "BYTES",
            "shape": [-1],
        }
        assert metadata["outputs"] == [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]}
        ]


@pytest.mark.parametrize("name", ["rgb", "gray"])
def test_binary_tensor_input_equals_v1_predict(
    client: httpclient.InferenceServerClient,
    server: RunningServer,
    cards: dict[str, ModelCard],
    image_files: list[Path],
    name: str,
) -> None:
    batch = preprocessed(image_files, cards[name])
    result = client.infer(name, [tensor_input(batch)])  # client defaults: binary in and out
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (2, len(cards[name].labels))
    output = result.get_output("probabilities")
    assert output["parameters"]["binary_data_size"] == probabilities.nbytes
    np.testing.assert_allclose(
        probabilities, v1_probabilities(server, name, image_files), rtol=0, atol=ATOL
    )
    response = result.get_response()
    assert response["model_name"] == name and response["model_version"] == "1"
    timings = response["parameters"]
    assert {"decode_ms", "preprocess_ms", "queue_ms", "inference_ms", "total_ms"} <= set(timings)
    assert timings["batch_size"] >= 2 and timings["total_ms"] > 0


@pytest.mark.parametrize("name", ["rgb", "gray"])
def test_encoded_image_input_equals_v1_predict(
    client: httpclient.InferenceServerClient,
    server: RunningServer,
    image_files: list[Path],
    name: str,
) -> None:
    # The gray model gets colour files: the card's colour conversion runs server-side.
    probabilities = client.infer(name, [image_input(image_files)]).as_numpy("probabilities")
    np.testing.assert_allclose(
        probabilities, v1_probabilities(server, name, image_files), rtol=0, atol=ATOL
    )
    as_column = client.infer(name, [image_input(image_files, [2, 1])]).as_numpy("probabilities")
    np.testing.assert_array_equal(as_column, probabilities)


def test_json_inputs_and_json_outputs(
    client: httpclient.InferenceServerClient, cards: dict[str, ModelCard], image_files: list[Path]
) -> None:
    batch = preprocessed(image_files, cards["rgb"])
    binary = client.infer("rgb", [tensor_input(batch)]).as_numpy("probabilities")
    json_only = client.infer(
        "rgb",
        [tensor_input(batch, binary=False)],
        outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=False)],
    )
    output = json_only.get_output("probabilities")
    assert "data" in output and "parameters" not in output
    np.testing.assert_allclose(json_only.as_numpy("probabilities"), binary, rtol=0, atol=ATOL)


def test_encoded_images_as_base64_json(
    client: httpclient.InferenceServerClient, image_files: list[Path]
) -> None:
    strings = np.array([base64.b64encode(f.read_bytes()).decode() for f in image_files], object)
    images = httpclient.InferInput("encoded_image", [len(image_files)], "BYTES")
    images.set_data_from_numpy(strings, binary_data=False)
    from_json = client.infer("rgb", [images]).as_numpy("probabilities")
    from_binary = client.infer("rgb", [image_input(image_files)]).as_numpy("probabilities")
    np.testing.assert_array_equal(from_json, from_binary)


@pytest.mark.parametrize("binary", [True, False])
def test_classification_extension(
    client: httpclient.InferenceServerClient, image_files: list[Path], binary: bool
) -> None:
    labels = ("cat", "dog", "bird")
    probabilities = client.infer("rgb", [image_input(image_files)]).as_numpy("probabilities")
    top2 = httpclient.InferRequestedOutput("probabilities", binary_data=binary, class_count=2)
    result = client.infer("rgb", [image_input(image_files)], outputs=[top2])
    strings = result.as_numpy("probabilities")
    assert strings.shape == (2, 2) and result.get_output("probabilities")["datatype"] == "BYTES"
    for row, probs in zip(strings, probabilities, strict=True):
        best = np.argsort(-probs, kind="stable")[:2]
        expected = [f"{probs[i]:f}:{i}:{labels[i]}" for i in best]
        assert [s.decode() if isinstance(s, bytes) else s for s in row] == expected


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_and_responses(
    client: httpclient.InferenceServerClient,
    cards: dict[str, ModelCard],
    image_files: list[Path],
    algorithm: str,
) -> None:
    batch = preprocessed(image_files, cards["rgb"])
    plain = client.infer("rgb", [tensor_input(batch)]).as_numpy("probabilities")
    compressed = client.infer(
        "rgb",
        [tensor_input(batch)],
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,
    ).as_numpy("probabilities")
    np.testing.assert_allclose(compressed, plain, rtol=0, atol=ATOL)


def test_request_id_and_version_in_the_url(
    client: httpclient.InferenceServerClient, image_files: list[Path]
) -> None:
    result = client.infer("rgb", [image_input(image_files)], model_version="1", request_id="r-42")
    assert result.get_response()["id"] == "r-42"


def refusal(call: object) -> InferenceServerException:
    assert callable(call)
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


def test_wrong_shape_is_a_clean_400(client: httpclient.InferenceServerClient) -> None:
    batch = np.zeros((1, 3, 28, 28), dtype=np.float32)
    error = refusal(lambda: client.infer("rgb", [tensor_input(batch)]))
    assert error.status() == "400"
    assert error.message() == (
        "input 'image' expects shape [-1, 3, 32, 32] (batch, channels, height, width), "
        "got [1, 3, 28, 28]"
    )


def test_wrong_datatype_is_a_clean_400(client: httpclient.InferenceServerClient) -> None:
    tensor = httpclient.InferInput("image", [1, 3, 32, 32], "FP64")
    tensor.set_data_from_numpy(np.zeros((1, 3, 32, 32), dtype=np.float64))
    error = refusal(lambda: client.infer("rgb", [tensor]))
    assert error.status() == "400"
    assert error.message() == "input 'image' expects datatype FP32, got FP64"


def test_unknown_model_and_version_are_clean_404s(
    client: httpclient.InferenceServerClient, image_files: list[Path]
) -> None:
    error = refusal(lambda: client.infer("no-such-model", [image_input(image_files)]))
    assert error.status() == "404"
    assert error.message() == "no model named 'no-such-model'; known models: gray, rgb"
    error = refusal(lambda: client.get_model_metadata("rgb", "7"))
    assert error.status() == "404" and "has no version 7; versions: 1" in (error.message() or "")


def test_unknown_input_and_output_names_are_clean_400s(
    client: httpclient.InferenceServerClient, image_files: list[Path]
) -> None:
    tensor = httpclient.InferInput("input__0", [1, 3, 32, 32], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3, 32, 32), dtype=np.float32))
    error = refusal(lambda: client.infer("rgb", [tensor]))
    assert error.status() == "400" and "unknown input 'input__0'" in (error.message() or "")
    logits = httpclient.InferRequestedOutput("logits")
    error = refusal(lambda: client.infer("rgb", [image_input(image_files)], outputs=[logits]))
    assert error.status() == "400" and "unknown output 'logits'" in (error.message() or "")


def test_undecodable_image_is_a_clean_400(client: httpclient.InferenceServerClient) -> None:
    images = httpclient.InferInput("encoded_image", [1], "BYTES")
    images.set_data_from_numpy(np.array([b"%PDF-1.4 not an image"], dtype=np.object_))
    error = refusal(lambda: client.infer("rgb", [images]))
    assert error.status() == "400" and "a PDF document" in (error.message() or "")
