"""``POST /v1/models/{name}[/versions/{version}]/explain``: predictions plus heatmaps.

A V1 adapter of the shared inference path (``service.inference.path``), like predict: the
same inputs (multipart fields or a raw image body, bounded), the same admission bound,
decoding, batcher, timings and metrics. It adds, per image, the class explained (top-1 or
``label``) and its class-activation heatmap (``service.protocols.v1.heatmaps``), as a
low-resolution JSON grid or, with ``format=png`` or ``Accept: image/png``, as a PNG overlay.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from model.cam import heatmap
from service.app.auth import require_api_key
from service.app.deps import State
from service.app.state import ServiceState
from service.inference.inputs import EncodedImages
from service.plumbing.errors import JSONBytesResponse
from service.protocols.v1.heatmaps import (
    check_label,
    choose_format,
    class_maps_of,
    explained_indices,
    explanations,
    render_overlay,
)
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
from service.protocols.v1.schemas import ExplanationResponse, error_responses

router = APIRouter(prefix="/v1", tags=["explain"], dependencies=[Depends(require_api_key)])

_DOC: dict[str, Any] = {
    "response_model": None,
    "response_class": JSONBytesResponse,
    "responses": {
        200: {
            "model": ExplanationResponse,
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        },
        **IMAGE_ERRORS,
        **error_responses(409),  # exported without class-activation maps
    },
    "openapi_extra": IMAGE_BODY,
}
_LABEL = Query(None, description="The class to explain (default: each image's top-1).")
_FORMAT = Query(
    None,
    description="json (heatmap grids) or png (one overlay image); default: png when Accept "
    "asks for image/png, else json.",
)
_OPACITY = Query(0.5, ge=0.0, le=1.0, description="Heatmap opacity of the PNG overlay.")


@dataclass(frozen=True)
class ExplainOptions:
    """The query parameters of both explain routes."""

    top_k: int | None
    frame: int | None
    label: str | None
    format: str | None
    opacity: float


async def explain_options(
    top_k: int | None = TOP_K,
    frame: int | None = FRAME,
    label: str | None = _LABEL,
    format: str | None = _FORMAT,
    opacity: float = _OPACITY,
) -> ExplainOptions:
    # A function, and async: FastAPI runs a class or a plain def dependency on its thread
    # pool, a hand-off per request (as get_state in service/app/deps.py).
    return ExplainOptions(top_k, frame, label, format, opacity)


Options = Annotated[ExplainOptions, Depends(explain_options)]


async def explain_with(
    request: Request, state: ServiceState, resolve: Resolve, options: ExplainOptions
) -> Response:
    label = options.label
    settings = state.settings
    async with model_call(state, resolve) as (model, call):
        card = model.card
        maps_output = class_maps_of(card).output_name  # 409 before the body is read
        check_label(card, label)
        images = await read_uploads(request, settings)
        chosen = choose_format(options.format, request.headers.get("accept"), len(images))
        inputs = EncodedImages(tuple(images), options.frame)
        result = await call.run(inputs)
        started = time.perf_counter()
        probabilities, maps = result.probabilities, result.output(maps_output)
        indices = explained_indices(card, probabilities, label)
        if chosen == "png":
            picture = await asyncio.to_thread(
                render_overlay,
                images[0],
                inputs.preprocessing(card.preprocessing),
                settings.max_image_pixels,
                heatmap(maps[0], indices[0]),
                options.opacity,
            )
            result = call.add_phase("explain", time.perf_counter() - started)
            return Response(
                picture,
                media_type="image/png",
                headers={
                    "Server-Timing": result.server_timing,
                    "X-Explained-Label": card.labels[indices[0]],
                    "X-Explained-Probability": f"{probabilities[0, indices[0]]:.6f}",
                },
            )
        answers = explanations(card, probabilities, maps, indices)
        result = call.add_phase("explain", time.perf_counter() - started)
        return prediction_answer(
            result, options.top_k, settings, explanations=answers, method="cam"
        )


@router.post(
    "/models/{name}/explain",
    summary="Classify images and explain them with a model's newest version",
    **_DOC,
)
async def explain(request: Request, state: State, name: str, options: Options) -> Response:
    return await explain_with(request, state, lambda repository: repository.get(name), options)


@router.post(
    "/models/{name}/versions/{version}/explain",
    summary="Classify images and explain them with one version of a model",
    **_DOC,
)
async def explain_version(
    request: Request, state: State, name: str, options: Options, version: int = Path(ge=1)
) -> Response:
    return await explain_with(
        request, state, lambda repository: repository.get(name, version), options
    )
