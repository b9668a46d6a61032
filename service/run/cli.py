"""``rectifier serve``: run the service with uvicorn (uvloop + httptools), or with
``--engine ray`` as Ray Serve replicas of the same app (``service.run.ray_serve``).

Flags override the ``RECTIFIER_*`` environment; a bad setting, a bad engine flag or an
unusable execution provider stops here with a clear message, before any port is opened
or Ray is started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from model.cli_flags import with_derived_options
from model.cli_root import root_options
from service.run.settings_flags import setting_parameters

if TYPE_CHECKING:
    from service.plumbing.settings import Settings


ENGINES = ("uvicorn", "ray")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@with_derived_options(setting_parameters(), into="setting_flags", first=False)
def serve(
    ctx: typer.Context,
    setting_flags: dict[str, Any],
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    engine: str = typer.Option(
        "uvicorn", "--engine", help="uvicorn (this machine) or ray (Ray Serve replicas)."
    ),
    replicas: int | None = typer.Option(
        None, "--replicas", min=1, help="--engine ray: replicas of the whole service (default 1)."
    ),
    autoscale: str | None = typer.Option(
        None, "--autoscale", help="--engine ray: MIN:MAX replicas, scaled by Ray on load."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="--engine ray: a cluster address, or auto (default: a new local Ray).",
    ),
    replica_cpus: float = typer.Option(
        1.0, "--replica-cpus", min=0.0, help="--engine ray: CPUs each replica reserves."
    ),
    replica_gpus: float | None = typer.Option(
        None,
        "--replica-gpus",
        min=0.0,
        help="--engine ray: GPUs each replica reserves (default 1 with a CUDA/TensorRT device, "
        "else 0).",
    ),
) -> None:
    """Serve every model under --models over HTTP."""
    from service.inference.providers import ProviderError, plan_providers
    from service.plumbing.logging import configure_logging
    from service.plumbing.settings import SettingsError, load_settings

    try:
        # The root option resolved the level (--log-level > RECTIFIER_LOG_LEVEL > default).
        settings = load_settings(**setting_flags, log_level=root_options(ctx).log_level)
        plan_providers(settings)
    except (SettingsError, ProviderError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if engine not in ENGINES:
        raise typer.BadParameter(
            f"{engine!r} is not an engine; choose {' or '.join(ENGINES)}", param_hint="--engine"
        )
    configure_logging(settings.log_level, settings.log_format)
    if engine == "ray":
        raise typer.Exit(
            _serve_on_ray(
                settings, host, port, replicas, autoscale, ray_address, replica_cpus, replica_gpus
            )
        )
    for flag, value in (
        ("--replicas", replicas),
        ("--autoscale", autoscale),
        ("--ray-address", ray_address),
        ("--replica-gpus", replica_gpus),
    ):
        if value is not None:
            raise typer.BadParameter("applies to --engine ray only", param_hint=flag)
    if settings.workers > 1:
        from service.run.workers import serve_workers

        raise typer.Exit(serve_workers(settings, host, port))

    from service.run.server import build_server

    server = build_server(settings, host, port)
    server.run()
    if server.fatal_error:
        typer.echo(f"error: {server.fatal_error}", err=True)
        raise typer.Exit(1)


def _serve_on_ray(
    settings: Settings,
    host: str,
    port: int,
    replicas: int | None,
    autoscale: str | None,
    address: str | None,
    replica_cpus: float,
    replica_gpus: float | None,
) -> int:
    """``--engine ray``: the flags checked first, then the deploy (service.run.ray_serve)."""
    if replicas is not None and autoscale is not None:
        raise typer.BadParameter(
            "give --replicas or --autoscale, not both", param_hint="--autoscale"
        )
    try:
        from service.run import ray_serve
    except ImportError as exc:
        typer.echo(
            f"error: --engine ray needs Ray Serve ({exc}); pip install 'rectifier[ray]'",
            err=True,
        )
        return 2
    try:
        bounds = ray_serve.parse_autoscale(autoscale) if autoscale is not None else None
        scaling = ray_serve.Scaling(replicas or 1, bounds, replica_cpus, replica_gpus)
        return ray_serve.serve_on_ray(settings, scaling, host, port, address)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except ray_serve.ReplicaStartError as exc:
        typer.echo(f"error: the Ray Serve deploy failed: {exc}", err=True)
        return 1
