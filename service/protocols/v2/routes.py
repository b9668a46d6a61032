"""The Open Inference Protocol's REST endpoints under ``/v2``.

Thin glue around the codec: models come from the service's repository, inference runs in
``service.protocols.v2.infer``, and every failure, the codec's ``V2Error`` and the service's
own ``APIError`` alike, is answered in V2's shape by ``service.protocols.v2.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel
from starlette.responses import Response

from service.app.auth import require_api_key
from service.app.deps import State
from service.app.repository import ModelRepository
from service.inference.served_model import ServedModel
from service.plumbing.errors import APIError, JSONBytesResponse, install_error_handlers
from service.protocols.v2.errors import V2Error
from service.protocols.v2.infer import infer
from service.protocols.v2.metadata import model_metadata, server_metadata
from service.protocols.v2.schemas import (
    INFER_REQUEST_SCHEMA,
    LiveResponse,
    ModelMetadataResponse,
    ModelReadyResponse,
    ReadyResponse,
    ServerMetadataResponse,
    V2ErrorResponse,
)
from service.protocols.v2.signature import ModelSignature

PREFIX = "/v2"


def error_response(status: int, message: str, headers: Mapping[str, str]) -> Response:
    """V2's error answer, the only one: ``{"error": "<message>"}``."""
    return JSONBytesResponse({"error": message}, status_code=status, headers=dict(headers))


def render_api_error(request: Request, error: APIError) -> Response:
    """The service's errors on ``/v2`` paths, in V2's shape. V2 has no 422: a bad
    parameter is a 400 there."""
    status = 400 if error.status_code == 422 else error.status_code
    return error_response(status, error.message, error.headers)


async def render_codec_error(request: Request, exc: Exception) -> Response:
    """The codec's ``V2Error`` (an exception handler: it leaves the shared path, which
    records its status, and is answered here)."""
    assert isinstance(exc, V2Error)
    return error_response(exc.status, exc.message, exc.headers)


def install_v2_errors(app: FastAPI) -> None:
    """Every error under ``PREFIX`` in V2's shape, the codec's and the service's."""
    install_error_handlers(app, [(PREFIX, render_api_error)])
    app.add_exception_handler(V2Error, render_codec_error)


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": V2ErrorResponse} for status in (400, 401, 404, 408, 413, 415, 500, 503)
}


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    """Route options: the 200 body is ``model`` (documented, not re-validated per request)."""
    return {
        "response_model": None,
        "response_class": JSONBytesResponse,
        "responses": {200: {"model": model}, **_ERRORS},
    }


_INFER_DOC: dict[str, Any] = {
    "response_class": Response,
    "responses": {
        200: {
            "description": "JSON outputs, or a JSON header of Inference-Header-Content-Length "
            "bytes followed by the binary outputs",
            "content": {"application/json": {}, "application/octet-stream": {}},
        },
        **_ERRORS,
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "description": "A V2 inference request: JSON, or a JSON header of "
            "Inference-Header-Content-Length bytes followed by binary tensors.",
            "content": {
                "application/json": {"schema": INFER_REQUEST_SCHEMA},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
}

router = APIRouter(prefix=PREFIX, tags=["v2"])
_protected = [Depends(require_api_key)]


@router.get("", summary="V2 server metadata", **_documented(ServerMetadataResponse))
async def get_server_metadata(request: Request) -> Response:
    return JSONBytesResponse(server_metadata(request.app.version))


@router.get("/health/live", summary="V2 liveness: the process is up", **_documented(LiveResponse))
async def live() -> Response:
    return JSONBytesResponse({"live": True})


@router.get(
    "/health/ready",
    summary="V2 readiness: models loaded and warmed",
    **_documented(ReadyResponse),
)
async def ready(state: State) -> Response:
    if (error := state.not_ready()) is not None:
        raise error
    return JSONBytesResponse({"ready": True})


def resolve(repository: ModelRepository, name: str, version: str | None) -> ServedModel:
    """The model version a V2 path names (versions are strings in V2, integers here)."""
    if version is None:
        return repository.get(name)
    if not (version.isascii() and version.isdigit()):
        repository.get(name)  # an unknown model is reported as such first
        versions = ", ".join(map(str, sorted(repository.models[name])))
        raise APIError(
            "version_not_found", f"model {name!r} has no version {version!r}; versions: {versions}"
        )
    return repository.get(name, int(version))


def _metadata(state: State, name: str, version: str | None) -> Response:
    repository = state.ready_repository()
    model = resolve(repository, name, version)
    signature = ModelSignature.from_card(model.card)
    return JSONBytesResponse(model_metadata(name, sorted(repository.models[name]), signature))


def _model_ready(state: State, name: str, version: str | None) -> Response:
    if (error := state.not_ready(empty_ok=True)) is not None:
        raise error
    model = resolve(state.ready_repository(), name, version)
    return JSONBytesResponse({"name": model.name, "version": str(model.version), "ready": True})


@router.get(
    "/models/{name}",
    summary="V2 model metadata",
    dependencies=_protected,
    **_documented(ModelMetadataResponse),
)
async def get_model_metadata(state: State, name: str) -> Response:
    return _metadata(state, name, None)


@router.get(
    "/models/{name}/versions/{version}",
    summary="V2 metadata of one model version",
    dependencies=_protected,
    **_documented(ModelMetadataResponse),
)
async def get_model_version_metadata(state: State, name: str, version: str) -> Response:
    return _metadata(state, name, version)


# Readiness stays open, like /readyz, so platform probes work when API keys are set.
@router.get("/models/{name}/ready", summary="V2 model readiness", **_documented(ModelReadyResponse))
async def model_ready(state: State, name: str) -> Response:
    return _model_ready(state, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="V2 readiness of one model version",
    **_documented(ModelReadyResponse),
)
async def model_version_ready(state: State, name: str, version: str) -> Response:
    return _model_ready(state, name, version)


@router.post(
    "/models/{name}/infer",
    summary="V2 inference with the model's newest version",
    dependencies=_protected,
    **_INFER_DOC,
)
async def infer_model(request: Request, state: State, name: str) -> Response:
    return await infer(request, state, resolve(state.ready_repository(), name, None))


@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="V2 inference with one model version",
    dependencies=_protected,
    **_INFER_DOC,
)
async def infer_model_version(request: Request, state: State, name: str, version: str) -> Response:
    return await infer(request, state, resolve(state.ready_repository(), name, version))
