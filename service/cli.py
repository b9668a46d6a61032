"""``rectifier serve``: run the service with uvicorn (uvloop + httptools).

Flags override the ``RECTIFIER_*`` environment; a bad setting or an unusable execution
provider stops here with a clear message, before any port is opened.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    models: Path | None = typer.Option(None, "--models", help="Model repository folder [models]."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    device: str | None = typer.Option(
        None, "--device", help="auto, cpu, cuda, tensorrt or a provider list [auto]."
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="onnxruntime intra-op threads [cores available]."
    ),
    decode_threads: int | None = typer.Option(
        None, "--decode-threads", help="Image decoding threads [cores available]."
    ),
    max_batch_size: int | None = typer.Option(None, "--max-batch-size", help="[32]"),
    max_batch_delay_ms: float | None = typer.Option(None, "--max-batch-delay-ms", help="[0]"),
    max_queue: int | None = typer.Option(
        None, "--max-queue", help="Queued requests per model [256]."
    ),
    default_model: str | None = typer.Option(None, "--default-model", help="Model of /v1/predict."),
    log_format: str | None = typer.Option(None, "--log-format", help="text or json [text]."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Server processes sharing the port, each with a share of the cores [1].",
    ),
) -> None:
    """Serve every model under --models over HTTP."""
    from service.config import SettingsError, load_settings
    from service.logging import configure_logging
    from service.providers import ProviderError, plan_providers

    try:
        settings = load_settings(
            models_dir=models,
            device=device,
            intra_op_threads=threads,
            decode_threads=decode_threads,
            max_batch_size=max_batch_size,
            max_batch_delay_ms=max_batch_delay_ms,
            max_queue=max_queue,
            default_model=default_model,
            log_format=log_format,
            workers=workers,
        )
        plan_providers(settings)
    except (SettingsError, ProviderError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from service.workers import serve_workers

        raise typer.Exit(serve_workers(settings, host, port))

    from service.server import build_server

    server = build_server(settings, host, port)
    server.run()
    if server.fatal_error:
        typer.echo(f"error: {server.fatal_error}", err=True)
        raise typer.Exit(1)
