"""Every router of the service, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter

from service.routers import models, predict, probes


def api_routers() -> list[APIRouter]:
    """Probes, the model list, the image API, hot reload and the Open Inference Protocol."""
    # Both import service.routers.predict, so they are imported here rather than at the top.
    from service.reload import router as reload_router
    from service.v2.routes import router as v2_router

    return [probes.router, models.router, predict.router, reload_router, v2_router]
