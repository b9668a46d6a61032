"""``POST /v1/models/{name}[/versions/{version}]/predict`` and ``POST /v1/predict``.

The V1 adapter of the shared inference path (``service.inference.path``): it reads the images
(multipart fields or the raw body, bounded) and answers the top-k labels with per-phase
timings (in the body and in ``Server-Timing``); admission, decoding, batching and metrics
are the shared path's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from model.card import MAX_FRAME
from service.app.auth import require_api_key
from service.app.deps import State
from service.app.repository import ModelRepository, ServedModel
from service.app.state import ServiceState
from service.inference.inputs import EncodedImages
from service.plumbing.errors import JSONBytesResponse
from service.protocols.v1.schemas import ErrorResponse, PredictionResponse
from service.protocols.v1.uploads import read_images

router = APIRouter(prefix="/v1", tags=["predict"], dependencies=[Depends(require_api_key)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 408, 413, 415, 422, 500, 503)
}
# The image API's request body and its top_k and frame parameters, shared with explain.
IMAGE_BODY = {
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
            "application/dicom": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
TOP_K = Query(
    None,
    ge=1,
    description="How many labels to return per image (default 5); values above the number "
    "of labels return them all.",
)
FRAME = Query(
    None,
    ge=0,
    le=MAX_FRAME,
    description="For multi-frame images (TIFF pages, GIF/WebP/APNG frames, DICOM frames): "
    "the frame to classify, from 0. Without it a multi-frame image is refused (422 "
    "multiple_frames) unless the model card names a frame.",
)
_DOC: dict[str, Any] = {
    "response_model": None,
    "response_class": JSONBytesResponse,
    "responses": {200: {"model": PredictionResponse}, **_ERRORS},
    "openapi_extra": IMAGE_BODY,
}


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


async def predict_with(
    request: Request,
    state: ServiceState,
    resolve: Callable[[ModelRepository], ServedModel],
    top_k: int | None,
    frame: int | None,
) -> Response:
    """The V1 adapter: multipart or raw images in, top-k labels and timings out."""
    model = resolve(state.ready_repository())
    settings = state.settings
    async with state.ready_inference().request(model) as call:
        images = await read_images(
            request,
            max_bytes=settings.max_upload_bytes,
            max_images=settings.max_images_per_request,
            timeout_s=settings.body_timeout_s,
        )
        result = await call.run(EncodedImages(tuple(images), frame))
        body = {
            "model": model.name,
            "version": model.version,
            "task": model.card.task,
            "predictions": format_predictions(
                model, result.probabilities, top_k or settings.default_top_k
            ),
            "batch_size": result.batch_size,
            "timings_ms": result.timings_ms,
        }
        return JSONBytesResponse(body, headers={"Server-Timing": result.server_timing})


@router.post(
    "/models/{name}/predict", summary="Classify images with a model's newest version", **_DOC
)
async def predict(
    request: Request,
    state: State,
    name: str,
    top_k: int | None = TOP_K,
    frame: int | None = FRAME,
) -> Response:
    return await predict_with(request, state, lambda repository: repository.get(name), top_k, frame)


@router.post(
    "/models/{name}/versions/{version}/predict",
    summary="Classify images with one version of a model",
    **_DOC,
)
async def predict_version(
    request: Request,
    state: State,
    name: str,
    version: int = Path(ge=1),
    top_k: int | None = TOP_K,
    frame: int | None = FRAME,
) -> Response:
    return await predict_with(
        request, state, lambda repository: repository.get(name, version), top_k, frame
    )


@router.post("/predict", summary="Classify images with the default model", **_DOC)
async def predict_default(
    request: Request, state: State, top_k: int | None = TOP_K, frame: int | None = FRAME
) -> Response:
    return await predict_with(request, state, lambda repository: repository.default(), top_k, frame)
