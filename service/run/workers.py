"""``rectifier serve --workers N``: N server processes sharing one listening socket.

Why: one process serves every request's HTTP and JSON work on one event-loop thread that
needs ~0.6 ms of CPU per request for a small model, and shares the GIL with the batcher,
which caps it below what the cores can do (docs/BENCHMARKS.md, "Reading the 2026-12-06
run"). N processes each run the whole service (their own event loop, decode pool, batcher
and onnxruntime session) on a share of the cores.

The parent binds the socket, starts the workers with ``spawn`` (a fresh interpreter: no
onnxruntime or thread state copied by ``fork``) and supervises them:

- SIGTERM or SIGINT to the parent reaches every worker as SIGTERM, so each drains as a
  single server does (readiness 503, in-flight requests finish, queues empty), and the
  parent exits 0 once all did. Workers run in their own process group, so Ctrl-C in a
  terminal reaches them once, through the parent.
- A worker that exits on its own (start-up failure, a crash, the kernel's OOM killer)
  stops the others and the parent exits 1: restarting is the orchestrator's job, and a
  half-capacity server that looks healthy is worse than a restart.
- A worker whose parent disappears (SIGKILL) shuts itself down.

Counters and histograms are summed over workers with prometheus-client's multiprocess
mode (its files live in a temporary folder the parent removes); see ``service.plumbing.metrics``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.connection import wait
from typing import Any

import uvicorn

from model.cpus import available_cpus
from service.plumbing.metrics import MULTIPROC_ENV
from service.plumbing.settings import Settings

log = logging.getLogger(__name__)


def per_worker_settings(settings: Settings) -> Settings:
    """Split the cores between the workers where the thread counts are left to default."""
    return settings.with_core_share(available_cpus() // settings.workers)


def serve_workers(settings: Settings, host: str, port: int) -> int:
    """Run ``settings.workers`` server processes on ``host:port``; return the exit status."""
    sock = _bind(host, port)
    metrics_dir = tempfile.mkdtemp(prefix="rectifier-metrics-")
    # Children read it when they import prometheus_client: multiprocess mode from the start.
    os.environ[MULTIPROC_ENV] = metrics_dir
    context = multiprocessing.get_context("spawn")
    worker_settings = per_worker_settings(settings)
    workers = [
        context.Process(
            target=_worker_main,
            args=(worker_settings, sock, index, os.getpid(), host, port),
            name=f"rectifier-worker-{index}",
        )
        for index in range(settings.workers)
    ]
    stopping = threading.Event()

    def stop_all() -> None:
        stopping.set()
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signal.SIGTERM)

    def on_signal(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            log.info("received signal %d: stopping %d workers", signum, len(workers))
        stop_all()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    try:
        for worker in workers:
            worker.start()
        log.info(
            "started %d workers (pids %s)", len(workers), ", ".join(str(w.pid) for w in workers)
        )
        running = list(workers)
        while running:
            for sentinel in wait([w.sentinel for w in running]):
                worker = next(w for w in running if w.sentinel == sentinel)
                worker.join()
                running.remove(worker)
                _mark_dead(worker.pid)
                if worker.exitcode != 0:
                    status = 1
                if not stopping.is_set():
                    log.error(
                        "worker %s (pid %s) exited with status %s; stopping the others",
                        worker.name,
                        worker.pid,
                        worker.exitcode,
                    )
                    status = 1
                    stop_all()
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound as uvicorn binds it for its own workers (IPv6 included;
    an address in use is logged and exits 1)."""
    return uvicorn.Config(
        "service.app.factory:create_app", host=host, port=port, log_config=None
    ).bind_socket()


def _mark_dead(pid: int | None) -> None:
    """Drop a finished worker's live gauges (its counters stay in the sums)."""
    if pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def _worker_main(
    settings: Settings,
    sock: socket.socket,
    index: int,
    parent_pid: int,
    host: str,
    port: int,
) -> None:
    # Imported here: this runs in the fresh interpreter, after PROMETHEUS_MULTIPROC_DIR is set.
    from service.plumbing.logging import configure_logging
    from service.run.server import build_server

    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which passes it on once
    configure_logging(settings.log_level, settings.log_format)
    server = build_server(settings, host, port)
    _watch_parent(parent_pid, server)
    server.run(sockets=[sock])
    if server.fatal_error:
        print(f"error: worker {index}: {server.fatal_error}", file=sys.stderr, flush=True)
        sys.exit(1)


def _watch_parent(parent_pid: int, server: Any) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        log.warning("the supervising process is gone; shutting down")
        server.handle_exit(signal.SIGTERM, None)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
