"""What the V1 image routes (predict and explain) share: the documentation of their body,
parameters and errors, the model call around a request, reading the uploads and the JSON
answer with the predictions and timings.

Each route is then only what it adds: predict nothing, explain its checks before the body
and its heatmaps after inference.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Query, Request
from starlette.responses import Response

from model.card import MAX_FRAME
from service.app.repository import ModelRepository
from service.app.state import ServiceState
from service.inference.path import InferenceCall, InferenceResult
from service.inference.served_model import ServedModel
from service.plumbing.errors import JSONBytesResponse
from service.plumbing.settings import Settings
from service.protocols.v1.schemas import error_responses
from service.protocols.v1.uploads import read_images

Resolve = Callable[[ModelRepository], ServedModel]

# The statuses an image route answers with; explain adds its 409 (not explainable).
IMAGE_ERRORS = error_responses(400, 401, 404, 408, 413, 415, 422, 500, 503)
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


@asynccontextmanager
async def model_call(
    state: ServiceState, resolve: Resolve
) -> AsyncIterator[tuple[ServedModel, InferenceCall]]:
    """The model a route names, and its request on the shared inference path (admitted
    before the body is read)."""
    model = resolve(state.ready_repository())
    async with state.ready_inference().request(model) as call:
        yield model, call


async def read_uploads(request: Request, settings: Settings) -> list[bytes]:
    """The request's images (multipart fields or the raw body), within the upload bounds."""
    return await read_images(
        request,
        max_bytes=settings.max_upload_bytes,
        max_images=settings.max_images_per_request,
        timeout_s=settings.body_timeout_s,
    )


OOD_NOTICE = (
    "This image is unlike the images this model was trained on: its answer is not to be trusted."
)


def format_predictions(
    model: ServedModel,
    probabilities: np.ndarray,
    top_k: int,
    ood: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Per image: the top-k (calibrated) probabilities and, when the card has an OOD scorer,
    ``ood_score``, ``in_distribution`` and, out of distribution, a plain ``notice``."""
    card = model.card
    k = min(top_k, card.num_classes)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k].tolist()
    labels = card.labels
    multilabel = card.task == "multilabel"
    predictions = []
    scores, inside = ood if ood is not None else (None, None)
    for n, (row, indices) in enumerate(zip(probabilities.tolist(), order, strict=True)):
        prediction: dict[str, Any] = {
            "top_k": [{"label": labels[i], "index": i, "probability": row[i]} for i in indices]
        }
        if scores is not None and inside is not None:
            prediction["ood_score"] = float(scores[n])
            prediction["in_distribution"] = bool(inside[n])
            if not inside[n]:
                prediction["notice"] = OOD_NOTICE
        if multilabel:
            prediction["labels_above_threshold"] = [
                label for label, p in zip(labels, row, strict=True) if p >= card.threshold
            ]
        predictions.append(prediction)
    return predictions


def prediction_answer(
    result: InferenceResult, top_k: int | None, settings: Settings, **extra: Any
) -> Response:
    """The JSON answer: model, version, task, the top-k predictions, what the route adds
    (``extra``), the batch size and the timings (also in ``Server-Timing``)."""
    model = result.model
    body = {
        "model": model.name,
        "version": model.version,
        "task": model.card.task,
        "predictions": format_predictions(
            model, result.probabilities, top_k or settings.default_top_k, result.ood
        ),
        **extra,
        "batch_size": result.batch_size,
        "timings_ms": result.timings_ms,
    }
    return JSONBytesResponse(body, headers={"Server-Timing": result.server_timing})
