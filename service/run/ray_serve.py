"""``rectifier serve --engine ray``: the same FastAPI app on Ray Serve replicas.

Each replica is one Ray actor running ``create_app(settings)`` behind ``@serve.ingress``:
the same lifespan (repository, model card, preprocessing, providers, batcher), the same
routes and errors. Nothing here handles a request; Ray's proxy hands every HTTP request
to a replica's app unchanged.

Readiness: Ray routes to a replica only once its constructor returned, and
``serve.run`` returns only once every replica did. So the replica enters the app's
lifespan while it is built and waits there until its models are loaded and warmed; a
model folder that serves nothing fails the constructor with the reason ``/readyz`` gives
(plus each model's error), and after ``CONSTRUCTOR_ATTEMPTS`` failures the deploy fails
with that message. Ray replaces a replica that dies or fails its health check.

Requires the optional extra ``ray`` (``pip install 'rectifier[ray]'``); the plain service
and its image never import this module.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from starlette.types import Receive, Scope, Send

from service.app.factory import create_app
from service.app.state import state_of
from service.plumbing.settings import PROVIDER_ALIASES, Settings, load_settings

log = logging.getLogger(__name__)

APP_NAME = "rectifier"
# Two attempts per replica tell a transient failure (a node lost mid-start) from a model
# folder that fails the same way every time, without making a broken deploy slow.
CONSTRUCTOR_ATTEMPTS = 2
GPU_PROVIDERS = frozenset({PROVIDER_ALIASES["cuda"], PROVIDER_ALIASES["tensorrt"]})


class ReplicaStartError(RuntimeError):
    """A replica's model repository serves nothing; the message says why."""


@dataclass(frozen=True)
class Scaling:
    """How many replicas, and what each one reserves from the Ray cluster."""

    replicas: int = 1
    autoscale: tuple[int, int] | None = None  # (min, max) replicas; replaces ``replicas``
    num_cpus: float = 1.0
    num_gpus: float | None = None  # None: one GPU when the settings ask for CUDA/TensorRT


def parse_autoscale(text: str) -> tuple[int, int]:
    """``MIN:MAX`` -> (min, max); a ValueError names the flag and the expected form."""
    parts = text.split(":")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"--autoscale takes MIN:MAX replicas, such as 1:4 (got {text!r})")
    low, high = (int(part) for part in parts)
    if low < 1 or high < low:
        raise ValueError(f"--autoscale needs 1 <= MIN <= MAX (got {text!r})")
    return low, high


def gpus_per_replica(settings: Settings, scaling: Scaling) -> float:
    if scaling.num_gpus is not None:
        return scaling.num_gpus
    return 1.0 if GPU_PROVIDERS & set(settings.provider_request or ()) else 0.0


def replica_settings(settings: Settings, num_cpus: float) -> Settings:
    """Thread pools sized to the replica's CPU reservation where left to default: a
    replica sees every core of its node, but Ray schedules others beside it."""
    return settings.with_core_share(math.floor(num_cpus))


class LifespanEntered:
    """An ASGI app whose lifespan was entered before Ray asked for it.

    Ray runs the lifespan startup after the replica's constructor and turns any failure
    into "lifespan startup failed, see the logs"; entering it in the constructor instead
    lets a broken model folder fail the deploy with its own message. Ray's later startup
    event is acknowledged, its shutdown event closes the lifespan.
    """

    def __init__(self, app: FastAPI, lifespan: AsyncExitStack) -> None:
        self.app = app
        self._lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._lifespan.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def wait_until_served(app: FastAPI, poll_s: float = 0.05) -> None:
    """Return once the app's models are loaded and warmed; raise ReplicaStartError when
    loading ended with nothing to serve (or a fatal provider error)."""
    repository = state_of(app).repository
    assert repository is not None  # the lifespan made it before the app was handed back
    while repository.state == "loading":
        await asyncio.sleep(poll_s)
    if not repository.ready:
        problems = [repository.not_ready_reason(), *map(str, repository.failures)]
        raise ReplicaStartError("; ".join(problems))


class RectifierReplica:
    """One replica: the whole Rectifier app, started and warmed before Ray routes to it.
    ``@serve.ingress()`` without an app: Ray calls ``__serve_build_asgi_app__`` in the
    replica, so the app (its sessions, threads, metrics registry) is never pickled."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: FastAPI | None = None

    async def __serve_build_asgi_app__(self) -> LifespanEntered:
        app = create_app(self._settings)
        state_of(app).replicated_by = "Ray Serve replicas"
        lifespan = AsyncExitStack()
        await lifespan.enter_async_context(app.router.lifespan_context(app))
        try:
            await wait_until_served(app)
        except BaseException:
            await lifespan.aclose()
            raise
        self._app = app
        return LifespanEntered(app, lifespan)

    def check_health(self) -> None:
        """Ray's periodic health check: an app that stopped serving gets replaced."""
        if self._app is None:
            return
        state = state_of(self._app)
        if state.repository is not None and not state.repository.ready and not state.draining:
            raise ReplicaStartError(state.repository.not_ready_reason())


REPLICA_DEPLOYMENT = serve.deployment(name="RectifierReplica")(serve.ingress()(RectifierReplica))


def build_application(settings: Settings, scaling: Scaling) -> Application:
    """The Ray Serve application: ``RectifierReplica`` with the scaling's resources."""
    if settings.workers > 1:
        raise ValueError(
            "RECTIFIER_WORKERS/--workers applies to --engine uvicorn; "
            "with --engine ray use --replicas or --autoscale"
        )
    options: dict[str, Any] = {
        "ray_actor_options": {
            "num_cpus": scaling.num_cpus,
            "num_gpus": gpus_per_replica(settings, scaling),
        },
        # Ray must not hold requests back before the service's own bounded queue
        # (max_queue, 503 + Retry-After) and batcher see them.
        "max_ongoing_requests": settings.max_queue,
        "graceful_shutdown_timeout_s": settings.shutdown_grace_s,
        "max_constructor_retry_count": CONSTRUCTOR_ATTEMPTS,
    }
    if scaling.autoscale is None:
        options["num_replicas"] = scaling.replicas
    else:
        low, high = scaling.autoscale
        options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": high,
            # A replica batches: it is busy when a full batch waits, not at 2 requests.
            "target_ongoing_requests": settings.max_batch_size,
        }
    deployment = REPLICA_DEPLOYMENT.options(**options)
    return deployment.bind(replica_settings(settings, scaling.num_cpus))


SCALING_ARGS = ("replicas", "autoscale", "replica_cpus", "replica_gpus")


def build_app(args: Mapping[str, str]) -> Application:
    """Ray Serve's application builder, for ``serve run`` / ``serve deploy`` / KubeRay:
    ``import_path: service.run.ray_serve:build_app`` with ``args`` holding settings fields
    (``models_dir: /models``, ...; the ``RECTIFIER_*`` environment fills the rest) and the
    scaling keys ``replicas``, ``autoscale`` (MIN:MAX), ``replica_cpus``, ``replica_gpus``."""
    values = dict(args)
    gpus = values.pop("replica_gpus", None)
    autoscale = values.pop("autoscale", None)
    scaling = Scaling(
        replicas=int(values.pop("replicas", 1)),
        autoscale=parse_autoscale(str(autoscale)) if autoscale else None,
        num_cpus=float(values.pop("replica_cpus", 1.0)),
        num_gpus=float(gpus) if gpus is not None else None,
    )
    return build_application(load_settings(**values), scaling)


def serve_on_ray(
    settings: Settings, scaling: Scaling, host: str, port: int, address: str | None
) -> int:
    """Deploy on Ray (a local instance when ``address`` is None, else that cluster; ``auto``
    finds a running one), serve until SIGTERM or SIGINT, then remove the application.
    Returns the exit status; a failed deploy raises ReplicaStartError."""
    import signal
    import threading

    import ray

    application = build_application(settings, scaling)
    # "local" starts a new instance even where RAY_ADDRESS names a cluster: the shutdown
    # below must only ever stop an instance this command started.
    ray.init(address=address or "local", include_dashboard=False, configure_logging=False)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        # Serve's HTTP address belongs to the cluster: the first start sets it for good.
        serve_was_running = bool(serve.status().proxies)
        serve.start(http_options={"host": host, "port": port})
        try:
            serve.run(application, name=APP_NAME, route_prefix="/")
        except RuntimeError as exc:
            reason = deploy_failure(str(exc))
            serve.delete(APP_NAME)  # no failed application left behind on a shared cluster
            raise ReplicaStartError(reason) from exc
        where = (
            "the cluster's Serve proxies (Serve was already running there: "
            "--host and --port did not apply)"
            if serve_was_running
            else f"http://{host}:{port}"
        )
        log.info("ready: %s on Ray Serve at %s", describe(scaling), where)
        stop.wait()
        log.info("stopping: removing the %s application", APP_NAME)
        serve.delete(APP_NAME)
        if address is None:
            serve.shutdown()
        return 0
    finally:
        ray.shutdown()


def describe(scaling: Scaling) -> str:
    if scaling.autoscale is not None:
        return f"{scaling.autoscale[0]} to {scaling.autoscale[1]} replicas (autoscaled)"
    return f"{scaling.replicas} replica{'s' if scaling.replicas != 1 else ''}"


def deploy_failure(message: str) -> str:
    """Why the deploy failed: the replica's own error, out of the status of the deployment
    (Ray wraps it in a traceback there; the application's message only names the
    deployment), or Ray's message when no replica raised one."""
    marker = f"{ReplicaStartError.__name__}: "
    status = serve.status().applications.get(APP_NAME)
    details = [d.message for d in status.deployments.values()] if status is not None else []
    for detail in [*details, message]:
        if marker in detail:
            return detail.rsplit(marker, 1)[1].strip().splitlines()[0]
    return message
