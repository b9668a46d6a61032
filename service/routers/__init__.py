"""Every router of the service, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter

from service.routers import explain, models, page, predict, probes
from service.routers import reload as model_reload
from service.v2.routes import router as v2_router


def api_routers() -> list[APIRouter]:
    """Probes, the model list, the image API and its explanations, hot reload, the Open
    Inference Protocol and the browser page."""
    return [
        probes.router,
        models.router,
        predict.router,
        explain.router,
        model_reload.router,
        v2_router,
        page.router,
    ]
