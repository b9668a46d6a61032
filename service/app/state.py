"""The service's state: one typed object per app.

``create_app`` makes it (settings, metrics, API keys); the lifespan fills in the model
repository, the inference path and the reloader; the server flips ``draining`` at the first
SIGTERM. Routes reach it through ``service.app.deps``; nothing else is kept on ``app.state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from service.app.reload import ModelReloader
from service.app.repository import ModelRepository
from service.inference.path import InferencePath
from service.plumbing.errors import APIError
from service.plumbing.metrics import ServiceMetrics
from service.plumbing.settings import Settings


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

    def ready_repository(self) -> ModelRepository:
        """The repository once start-up has loaded it; 503 ``not_ready`` before that."""
        repository = self.repository
        if repository is None or repository.state == "loading":
            raise APIError(
                "not_ready", "the server is still loading its models", headers={"Retry-After": "1"}
            )
        if repository.state == "failed":
            raise APIError(
                "not_ready",
                f"start-up failed: {repository.fatal_error}",
                headers={"Retry-After": "1"},
            )
        return repository

    def ready_inference(self) -> InferencePath:
        self.ready_repository()
        assert self.inference is not None  # made with the repository, in the lifespan
        return self.inference

    def ready_reloader(self) -> ModelReloader:
        self.ready_repository()
        assert self.reloader is not None  # made with the repository, in the lifespan
        return self.reloader

    def refuse_when_draining(self) -> None:
        if self.draining:
            raise APIError("not_ready", "the server is shutting down", headers={"Retry-After": "1"})


def attach_state(app: FastAPI, state: ServiceState) -> None:
    app.state.service = state


def state_of(app: FastAPI) -> ServiceState:
    state: ServiceState = app.state.service
    return state
