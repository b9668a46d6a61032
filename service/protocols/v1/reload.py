"""``POST /v1/models/{name}/reload``: load a model's versions afresh (``service.app.reload``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from service.app.auth import require_api_key
from service.app.deps import State
from service.plumbing.errors import APIError
from service.protocols.v1.schemas import error_responses

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(require_api_key)])


class ReloadResponse(BaseModel):
    model: str
    versions: list[int] = Field(description="The versions now serving, newest first.")
    previous_versions: list[int] = Field(description="The versions served before the reload.")
    load_seconds: float = Field(description="Time to load and warm up the new sessions.")


@router.post(
    "/models/{name}/reload",
    response_model=ReloadResponse,
    responses=error_responses(401, 404, 409, 422, 503),
    summary="Load a model's versions afresh; the old ones serve until the new ones are warm",
)
async def reload_model(state: State, name: str) -> dict[str, Any]:
    reloader = state.ready_reloader()
    workers = state.settings.workers
    if workers > 1:
        # The request reaches one worker; the others would go on serving the old versions.
        raise APIError(
            "reload_unavailable",
            f"hot reload needs a single server process and this server runs {workers} "
            "workers; restart it to serve the new versions",
            {"workers": workers},
        )
    if state.replicated_by is not None:
        raise APIError(
            "reload_unavailable",
            f"hot reload reaches one copy of the service and this one runs as one of "
            f"{state.replicated_by}; deploy again to serve the new versions",
            {"engine": state.replicated_by},
        )
    return await reloader.reload(name)
