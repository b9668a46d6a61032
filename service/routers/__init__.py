"""Every router of the service, gathered in one place."""

from __future__ import annotations

import importlib
import importlib.util

from fastapi import APIRouter

from service.routers import models, predict, probes


def _optional_router(*modules: str) -> APIRouter | None:
    """The ``router`` attribute of the first of ``modules`` that defines one."""
    for module in modules:
        try:
            present = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            present = False
        if present:
            router = getattr(importlib.import_module(module), "router", None)
            if isinstance(router, APIRouter):
                return router
    return None


def api_routers() -> list[APIRouter]:
    """Probes, the model list and the image API; plus the Open Inference Protocol router
    (an ``APIRouter`` named ``router`` in ``service.v2`` or ``service.v2.router``) once the
    V2 package provides it."""
    from service.reload import router as reload_router  # imports predict: not at the top

    routers = [probes.router, models.router, predict.router, reload_router]
    v2 = _optional_router("service.v2", "service.v2.router")
    if v2 is not None:
        routers.append(v2)
    return routers
