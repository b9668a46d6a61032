"""Kubernetes-style probes and Prometheus metrics; open even when API keys are set."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from service.app.deps import State
from service.plumbing.errors import JSONBytesResponse
from service.plumbing.metrics import CONTENT_TYPE
from service.protocols.v1.schemas import ReadinessResponse, error_responses

router = APIRouter(tags=["probes"])


@router.get("/livez", summary="The process is up")
async def livez() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    response_model=ReadinessResponse,
    responses=error_responses(503),
    summary="Every model loaded and warmed (503 while loading and while shutting down)",
)
async def readyz(state: State) -> Response:
    repository = state.repository
    details: dict[str, Any] = (
        repository.readiness() if repository is not None else {"state": "starting"}
    )
    if (error := state.not_ready()) is not None:
        error.detail = details
        raise error
    return JSONBytesResponse({"status": "ready", **details})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
