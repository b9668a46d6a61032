"""The service's state: one typed object per app.

``create_app`` makes it (settings, metrics, API keys); the lifespan fills in the model
repository, the inference path and the reloader; the server flips ``draining`` at the first
SIGTERM. Routes reach it through ``service.app.deps``; nothing else is kept on ``app.state``.
Whether the server is ready is decided in one place, ``ServiceState.not_ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from service.app.reload import ModelReloader
from service.app.repository import STILL_LOADING, ModelRepository
from service.inference.path import InferencePath
from service.plumbing.errors import APIError
from service.plumbing.metrics import ServiceMetrics
from service.plumbing.settings import Settings

SHUTTING_DOWN = "the server is shutting down"


@dataclass(eq=False)
class ServiceState:
    settings: Settings
    metrics: ServiceMetrics
    api_keys: list[bytes]
    repository: ModelRepository | None = None
    inference: InferencePath | None = None
    reloader: ModelReloader | None = None
    # The one shutdown flag: readiness turns 503, reloads are refused, loading stops.
    draining: bool = False
    # Set by the CLI's server: stops it when start-up fails (a provider cannot load).
    on_fatal: Callable[[str], None] | None = None
    # Set by an engine that runs other copies of this app behind one address ("Ray Serve
    # replicas"): a request such as a hot reload reaches one copy only.
    replicated_by: str | None = None

    def not_ready(self, *, draining_ok: bool = False, empty_ok: bool = False) -> APIError | None:
        """Why the server is not ready, as the 503 ``not_ready`` to answer; None when it is.

        The one readiness check. The probes (``/readyz``, ``/v2/health/ready``, V2 model
        readiness) ask it as it is. Admission asks with ``draining_ok`` and ``empty_ok``: a
        draining server still answers what reaches it, and with no model a request is told
        its model is not found. A reload asks with ``empty_ok``: it may add the first model.
        """
        if self.draining and not draining_ok:
            return APIError("not_ready", SHUTTING_DOWN)
        repository = self.repository
        if repository is None:
            reason = STILL_LOADING
        elif repository.ready or (empty_ok and repository.state == "ready"):
            return None
        else:
            reason = repository.not_ready_reason()
        return APIError("not_ready", reason, headers={"Retry-After": "1"})

    def ready_repository(self) -> ModelRepository:
        """The repository once start-up has loaded it (admission); 503 ``not_ready`` before."""
        if (error := self.not_ready(draining_ok=True, empty_ok=True)) is not None:
            raise error
        assert self.repository is not None  # not_ready says so otherwise
        return self.repository

    def ready_inference(self) -> InferencePath:
        self.ready_repository()
        assert self.inference is not None  # made with the repository, in the lifespan
        return self.inference

    def ready_reloader(self) -> ModelReloader:
        """The reloader while the server serves and is not shutting down."""
        if (error := self.not_ready(empty_ok=True)) is not None:
            raise error
        assert self.reloader is not None  # made with the repository, in the lifespan
        return self.reloader


def attach_state(app: FastAPI, state: ServiceState) -> None:
    app.state.service = state


def state_of(app: FastAPI) -> ServiceState:
    state: ServiceState = app.state.service
    return state
