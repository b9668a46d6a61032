"""The application factory and its lifespan.

``create_app(settings)`` builds the FastAPI app and its one typed state object
(``service.app.state.ServiceState``); nothing heavy happens at import or build time. The
lifespan picks the execution providers (an unusable explicit provider fails start-up), then
loads every model in the background, so ``/livez`` answers at once and ``/readyz`` turns 200
only when every model is loaded and warmed (under ``--workers`` each worker starts listening
only once its models are warm). On exit it lets the batchers finish what is queued and
closes the sessions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from model.cpus import available_cpus
from service.app.loading import ModelLoader
from service.app.reload import RETIRE_MARGIN_S, ModelReloader
from service.app.repository import ModelRepository
from service.app.routes import api_routers
from service.app.state import ServiceState, attach_state, state_of
from service.inference.path import InferencePath
from service.inference.pipeline import ImagePipeline
from service.inference.providers import select_providers
from service.plumbing.errors import JSONBytesResponse
from service.plumbing.logging import RequestContextMiddleware
from service.plumbing.metrics import ServiceMetrics
from service.plumbing.settings import Settings, get_settings
from service.protocols.v2 import routes as v2_routes

log = logging.getLogger(__name__)

__version__ = "0.1.0"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = state_of(app)
    settings = state.settings
    plan = select_providers(settings)  # ProviderError here fails start-up
    repository = ModelRepository(
        settings, ModelLoader(settings, plan, observer_for=state.metrics.batch_observer)
    )
    pipeline = ImagePipeline(
        settings.decode_threads or available_cpus(),
        settings.max_image_pixels,
        settings.inline_decode_max_pixels,
    )
    state.repository = repository
    state.inference = InferencePath(pipeline, state.metrics)
    # A replaced version retires only once no request can still be reading its body.
    state.reloader = ModelReloader(repository, settings.body_timeout_s + RETIRE_MARGIN_S)
    loop = asyncio.get_running_loop()
    loader = asyncio.create_task(
        asyncio.to_thread(repository.load_all, loop, lambda: state.draining), name="load-models"
    )
    loader.add_done_callback(lambda _: _report_fatal(state, repository))
    if settings.workers > 1:
        # Workers share one listening socket and uvicorn accepts only after start-up, so a
        # worker that waits for its models here is never handed a request it would refuse
        # with 503 while the others serve.
        await asyncio.shield(loader)
    worker_state = state.metrics.worker_state
    refresher = None
    if worker_state is not None:  # several workers: publish this one's state for scrapes
        refresher = asyncio.create_task(worker_state.refresh_every(1.0), name="worker-metrics")
        loader.add_done_callback(lambda _: worker_state.refresh())
    try:
        yield
    finally:
        if refresher is not None:
            refresher.cancel()
        state.draining = True
        await asyncio.shield(loader)
        await asyncio.to_thread(repository.close, settings.shutdown_grace_s)
        pipeline.close()
        log.info("stopped")


def _report_fatal(state: ServiceState, repository: ModelRepository) -> None:
    if repository.fatal_error and state.on_fatal is not None:
        state.on_fatal(repository.fatal_error)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Rectifier",
        summary="ReLU-family CNN image classifiers served with ONNX Runtime",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JSONBytesResponse,
    )
    metrics = ServiceMetrics()
    state = ServiceState(
        settings=settings,
        metrics=metrics,
        api_keys=[key.get_secret_value().encode() for key in settings.api_keys],
    )
    attach_state(app, state)
    metrics.watch(lambda: state.repository)
    v2_routes.install_v2_errors(app)
    for router in api_routers():
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["Server-Timing", "X-Request-ID"],
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics, log_access=settings.access_log)
    return app
