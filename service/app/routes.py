"""Every router of the service, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter

from service.app import page, probes
from service.protocols.dicomweb import pull as dicomweb_pull
from service.protocols.dicomweb import stow as dicomweb_stow
from service.protocols.v1 import explain, models, predict
from service.protocols.v1 import reload as model_reload
from service.protocols.v2.routes import router as v2_router


def api_routers() -> list[APIRouter]:
    """The image API, the Open Inference Protocol, probes, the model list, explanations,
    hot reload and the browser page. The inference routes come first: routing tries the
    routers in this order on every request (no two routers' paths overlap)."""
    return [
        predict.router,
        v2_router,
        probes.router,
        models.router,
        explain.router,
        model_reload.router,
        dicomweb_pull.router,
        dicomweb_stow.router,
        page.router,
    ]
