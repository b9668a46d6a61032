"""``POST /v1/models/{name}[/versions/{version}]/predict`` and ``POST /v1/predict``.

The V1 adapter of the shared inference path (``service.inference.path``): it reads the images
(multipart fields or the raw body, bounded) and answers the top-k labels with per-phase
timings (in the body and in ``Server-Timing``); admission, decoding, batching and metrics
are the shared path's, the upload handling and the answer ``service.protocols.v1.image_api``'s.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from service.app.auth import require_api_key
from service.app.deps import State
from service.app.state import ServiceState
from service.inference.inputs import EncodedImages
from service.plumbing.errors import JSONBytesResponse
from service.protocols.v1.image_api import (
    FRAME,
    IMAGE_BODY,
    IMAGE_ERRORS,
    TOP_K,
    Resolve,
    model_call,
    prediction_answer,
    read_uploads,
)
from service.protocols.v1.schemas import PredictionResponse

router = APIRouter(prefix="/v1", tags=["predict"], dependencies=[Depends(require_api_key)])

_DOC: dict[str, Any] = {
    "response_model": None,
    "response_class": JSONBytesResponse,
    "responses": {200: {"model": PredictionResponse}, **IMAGE_ERRORS},
    "openapi_extra": IMAGE_BODY,
}


async def predict_with(
    request: Request, state: ServiceState, resolve: Resolve, top_k: int | None, frame: int | None
) -> Response:
    """The V1 adapter: multipart or raw images in, top-k labels and timings out."""
    async with model_call(state, resolve) as (_, call):
        images = await read_uploads(request, state.settings)
        result = await call.run(EncodedImages(tuple(images), frame))
        return prediction_answer(result, top_k, state.settings)


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
