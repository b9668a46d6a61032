"""What predict and explain share: the JSON answer, built once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import orjson

from service.inference.path import InferenceResult
from service.plumbing.settings import Settings
from service.protocols.v1.image_api import IMAGE_ERRORS, prediction_answer


def result_of(probabilities: np.ndarray, task: str = "multiclass") -> InferenceResult:
    card = SimpleNamespace(
        output_name="probabilities",
        labels=["cat", "dog", "bird"],
        num_classes=3,
        task=task,
        threshold=0.5,
    )
    model = SimpleNamespace(
        name="rgb", version=2, card=card, output_names=["probabilities"], trust=None
    )
    timings = {"decode": 0.001, "preprocess": 0.0, "queue": 0.0, "inference": 0.002, "total": 0.004}
    return InferenceResult(model, [probabilities], 3, timings)  # type: ignore[arg-type]


def test_the_answer_holds_predictions_what_the_route_adds_then_batch_and_timings(tmp_path):
    result = result_of(np.array([[0.1, 0.7, 0.2]], np.float32))
    response = prediction_answer(result, 2, Settings(models_dir=tmp_path), method="cam")
    body = orjson.loads(bytes(response.body))
    assert list(body) == [
        "model",
        "version",
        "task",
        "predictions",
        "method",
        "batch_size",
        "timings_ms",
    ]
    assert [p["label"] for p in body["predictions"][0]["top_k"]] == ["dog", "bird"]
    assert body["timings_ms"]["total"] == 4.0
    assert response.headers["server-timing"] == result.server_timing


def test_multilabel_answers_list_the_labels_above_the_threshold(tmp_path):
    result = result_of(np.array([[0.9, 0.6, 0.1]], np.float32), task="multilabel")
    body = orjson.loads(bytes(prediction_answer(result, None, Settings(models_dir=tmp_path)).body))
    assert body["predictions"][0]["labels_above_threshold"] == ["cat", "dog"]
    assert len(body["predictions"][0]["top_k"]) == 3  # the default top_k (5), capped


def test_image_routes_document_every_error_status_once():
    assert sorted(IMAGE_ERRORS) == [400, 401, 404, 408, 413, 415, 422, 500, 503]
