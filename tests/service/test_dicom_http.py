"""DICOM end to end, through a real server: V1 raw and multipart, V2 BYTES; the answers
equal the PyTorch model's on the same file; the card's window is what the server applies;
and no patient identifier reaches a response body, the log (at DEBUG) or the metrics.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from model.card import MAX_FRAME, DicomPolicy
from tests.helpers.dicom import (
    PHI_STRINGS,
    SYNTAXES,
    ct_bytes,
    huge_dimensions,
    multi_frame,
    with_bad_vr,
    with_transfer_syntax,
    without_pixel_data,
)
from tests.helpers.models import make_checkpoint
from tests.helpers.predictions import TOLERANCE, torch_probabilities
from tests.helpers.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

LABELS = ("normal", "nodule")
CARD_WINDOW = (-600.0, 1500.0)  # a lung window, unlike the files' soft-tissue 40/400


@pytest.fixture(scope="module")
def ct_model(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, model repository) of a grayscale model whose card fixes a lung window."""
    from model.export import export_checkpoint

    folder = tmp_path_factory.mktemp("ct-model")
    checkpoint = make_checkpoint(
        folder / "ct.pt", color_mode="L", labels=LABELS, window=CARD_WINDOW, seed=3
    )
    export_checkpoint(checkpoint, folder / "models", "ct")
    return checkpoint, folder / "models"


@pytest.fixture(scope="module")
def server(ct_model) -> Iterator[RunningServer]:
    with running_server(ct_model[1], env={"RECTIFIER_LOG_LEVEL": "DEBUG"}) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        yield http


def scores(body: dict) -> np.ndarray:
    top = {s["label"]: s["probability"] for s in body["predictions"][0]["top_k"]}
    return np.array([top[label] for label in LABELS])


def raw(client: httpx.Client, data: bytes, **params: object) -> httpx.Response:
    return client.post(
        "/v1/models/ct/predict",
        content=data,
        headers={"Content-Type": "application/dicom"},
        params={"top_k": 10, **params},
    )


@pytest.mark.parametrize("syntax", list(SYNTAXES), ids=list(SYNTAXES))
def test_http_matches_pytorch_on_a_dicom_file(client, ct_model, tmp_path, syntax):
    data = ct_bytes(size=80, syntax=SYNTAXES[syntax])
    path = tmp_path / "scan.dcm"
    path.write_bytes(data)
    expected = torch_probabilities(ct_model[0], path)
    response = raw(client, data)
    assert response.status_code == 200, response.text
    assert np.abs(scores(response.json()) - expected).max() <= TOLERANCE
    form = client.post(
        "/v1/models/ct/predict",
        files={"image": ("scan.dcm", data, "application/dicom")},
        params={"top_k": 10},
    )
    assert form.status_code == 200, form.text
    assert np.abs(scores(form.json()) - expected).max() <= TOLERANCE


def test_v2_bytes_input_matches_pytorch(client, ct_model, tmp_path):
    data = ct_bytes(size=80, syntax=SYNTAXES["j2k"])
    path = tmp_path / "scan.dcm"
    path.write_bytes(data)
    body = {
        "inputs": [
            {
                "name": "encoded_image",
                "shape": [1],
                "datatype": "BYTES",
                "data": [base64.b64encode(data).decode()],
            }
        ]
    }
    response = client.post("/v2/models/ct/infer", json=body)
    assert response.status_code == 200, response.text
    got = np.array(response.json()["outputs"][0]["data"])
    assert np.abs(got - torch_probabilities(ct_model[0], path)).max() <= TOLERANCE


def test_the_cards_window_is_applied_whatever_the_file_says(client, ct_model, tmp_path):
    # The same pixels under two different file windows: the card's window replaces both...
    soft, bone = ct_bytes(size=80), ct_bytes(size=80, WindowCenter=500, WindowWidth=2000)
    np.testing.assert_allclose(
        scores(raw(client, soft).json()), scores(raw(client, bone).json()), atol=1e-6
    )
    # ... where a model without a card window would see two different images.
    from model.checkpoint import load_checkpoint
    from model.decoding import load_and_preprocess

    spec = load_checkpoint(ct_model[0]).config.preprocessing
    file_windows = spec.model_copy(update={"dicom": DicomPolicy()})
    (tmp_path / "soft.dcm").write_bytes(soft)
    (tmp_path / "bone.dcm").write_bytes(bone)
    seen = [load_and_preprocess(tmp_path / f"{n}.dcm", file_windows) for n in ("soft", "bone")]
    assert np.abs(seen[0] - seen[1]).max() > 0.5


def test_a_frame_of_a_multi_frame_file(client):
    refused = raw(client, multi_frame(3))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "multiple_frames"
    assert "3 frames" in refused.json()["error"]["message"]
    assert raw(client, multi_frame(3), frame=2).status_code == 200


@pytest.mark.parametrize("frame", [3, MAX_FRAME, MAX_FRAME + 1, 2**70])
def test_a_frame_out_of_range_is_a_4xx_over_v1_explain_and_v2(client, frame):
    # A frame past 64 bits once reached the JSON encoder of the error and answered 500.
    for path in ("/v1/models/ct/predict", "/v1/models/ct/explain"):
        answer = client.post(
            path,
            content=multi_frame(3),
            headers={"Content-Type": "application/dicom"},
            params={"frame": frame},
        )
        # Past the frames of the file: invalid_image; past any frame count: invalid_parameter.
        assert answer.status_code == (400 if frame <= MAX_FRAME else 422), answer.text
    body = {
        "inputs": [
            {
                "name": "encoded_image",
                "datatype": "BYTES",
                "shape": [1],
                "data": [base64.b64encode(multi_frame(3)).decode()],
                "parameters": {"frame": frame},
            }
        ]
    }
    answer = client.post("/v2/models/ct/infer", content=json.dumps(body))
    assert answer.status_code == 400, answer.text
    if frame <= 2**63:  # larger integers are refused by the JSON parser itself
        assert "frame" in answer.json()["error"]


BAD_FILES = {
    "truncated": ct_bytes()[:2000],
    "no_pixel_data": without_pixel_data(ct_bytes()),
    "mpeg2": with_transfer_syntax(ct_bytes(), "1.2.840.10008.1.2.4.100"),
    "huge": huge_dimensions(),
    "bad_vr": with_bad_vr(ct_bytes()),
    "frames": multi_frame(2),
}


def test_no_patient_identifier_in_bodies_logs_or_metrics(client, server):
    bodies = []
    for data in (ct_bytes(), *BAD_FILES.values()):
        bodies.append(raw(client, data).text)
        form = {"image": ("Quixote^Alonso.dcm", data, "application/dicom")}
        bodies.append(client.post("/v1/models/ct/predict", files=form).text)
        v2 = {"name": "encoded_image", "shape": [1], "datatype": "BYTES"}
        v2["data"] = [base64.b64encode(data).decode()]
        bodies.append(client.post("/v2/models/ct/infer", json={"inputs": [v2]}).text)
    assert sum('"predictions"' in body for body in bodies) == 2  # the good file, V1 twice
    bodies.append(client.get("/metrics").text)
    everything = "\n".join([*bodies, server.logs()])
    assert "DEBUG" in server.logs()  # the log really is at its most verbose
    leaked = [value for value in PHI_STRINGS if value in everything]
    assert not leaked, leaked
