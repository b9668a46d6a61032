"""``POST /v1/models/{name}[/versions/{version}]/predict`` and ``POST /v1/predict``.

Read the images (bounded), decode and preprocess them on the decode pool, submit the batch
to the model's dynamic batcher, and answer the top-k labels with per-phase timings (in the
body and in ``Server-Timing``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from service.auth import require_api_key
from service.errors import APIError, JSONBytesResponse
from service.repository import ModelRepository, ServedModel
from service.schemas import ErrorResponse, PredictionResponse
from service.uploads import read_images

router = APIRouter(prefix="/v1", tags=["predict"], dependencies=[Depends(require_api_key)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 408, 413, 415, 422, 500, 503)
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more images (repeat the field for a batch).",
                        }
                    },
                    "required": ["image"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_TOP_K = Query(
    None,
    ge=1,
    description="How many labels to return per image (default 5); values above the number "
    "of labels return them all.",
)
_DOC: dict[str, Any] = {
    "response_model": None,
    "response_class": JSONBytesResponse,
    "responses": {200: {"model": PredictionResponse}, **_ERRORS},
    "openapi_extra": _BODY,
}
PHASES = ("decode", "preprocess", "queue", "inference", "total")


def server_timing(timings_ms: dict[str, float]) -> str:
    """A ``Server-Timing`` header value: ``decode;dur=0.412, ...``."""
    return ", ".join(f"{name};dur={value:.3f}" for name, value in timings_ms.items())


def format_predictions(
    model: ServedModel, probabilities: np.ndarray, top_k: int
) -> list[dict[str, Any]]:
    card = model.card
    k = min(top_k, card.num_classes)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k].tolist()
    labels = card.labels
    multilabel = card.task == "multilabel"
    predictions = []
    for row, indices in zip(probabilities.tolist(), order, strict=True):
        prediction: dict[str, Any] = {
            "top_k": [{"label": labels[i], "index": i, "probability": row[i]} for i in indices]
        }
        if multilabel:
            prediction["labels_above_threshold"] = [
                label for label, p in zip(labels, row, strict=True) if p >= card.threshold
            ]
        predictions.append(prediction)
    return predictions


def ensure_ready(request: Request) -> ModelRepository:
    repository: ModelRepository | None = request.app.state.repository
    if repository is None or repository.state in ("loading", "failed"):
        raise APIError(
            "not_ready",
            "the server is still loading its models"
            if repository is None or repository.state == "loading"
            else f"start-up failed: {repository.fatal_error}",
            headers={"Retry-After": "1"},
        )
    return repository


async def predict_with(
    request: Request, resolve: Callable[[ModelRepository], ServedModel], top_k: int | None
) -> Response:
    started = time.perf_counter()
    state = request.app.state
    model = resolve(ensure_ready(request))
    settings = state.settings
    status, timings_s, count = 500, None, 0
    try:
        model.batcher.check_capacity(model.batcher.admitted)
        images = await read_images(
            request,
            max_bytes=settings.max_upload_bytes,
            max_images=settings.max_images_per_request,
            timeout_s=settings.body_timeout_s,
        )
        count = len(images)
        with model.batcher.admit():
            prepared, result = await state.pipeline.prepare_and_submit(
                images, model.card.preprocessing, model.batcher
            )
        probabilities = result.outputs[model.output_names.index(model.card.output_name)]
        predictions = format_predictions(model, probabilities, top_k or settings.default_top_k)
        timings_s = {
            "decode": prepared.decode_s,
            "preprocess": prepared.preprocess_s,
            "queue": result.queue_s,
            "inference": result.inference_s,
            "total": time.perf_counter() - started,
        }
        timings_ms = {name: seconds * 1000.0 for name, seconds in timings_s.items()}
        body = {
            "model": model.name,
            "version": model.version,
            "task": model.card.task,
            "predictions": predictions,
            "batch_size": result.batch_size,
            "timings_ms": timings_ms,
        }
        model.latency.add(timings_s["total"])
        status = 200
        return JSONBytesResponse(body, headers={"Server-Timing": server_timing(timings_ms)})
    except APIError as exc:
        status = exc.status_code
        raise
    finally:
        state.metrics.observe_prediction(
            model.name, model.version, status, timings_s, count if status == 200 else 0
        )


@router.post(
    "/models/{name}/predict", summary="Classify images with a model's newest version", **_DOC
)
async def predict(request: Request, name: str, top_k: int | None = _TOP_K) -> Response:
    return await predict_with(request, lambda repository: repository.get(name), top_k)


@router.post(
    "/models/{name}/versions/{version}/predict",
    summary="Classify images with one version of a model",
    **_DOC,
)
async def predict_version(
    request: Request, name: str, version: int = Path(ge=1), top_k: int | None = _TOP_K
) -> Response:
    return await predict_with(request, lambda repository: repository.get(name, version), top_k)


@router.post("/predict", summary="Classify images with the default model", **_DOC)
async def predict_default(request: Request, top_k: int | None = _TOP_K) -> Response:
    return await predict_with(request, lambda repository: repository.default(), top_k)
