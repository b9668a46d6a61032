"""The uvicorn server the CLI runs: graceful shutdown that Kubernetes and tests can rely on.

At the first SIGTERM or SIGINT ``/readyz`` turns 503; after ``shutdown_delay_s`` (time for a
load balancer to stop sending) uvicorn stops accepting connections and lets in-flight
requests finish (``timeout_graceful_shutdown``); then the lifespan drains the batch queues.
"""

from __future__ import annotations

import threading
from types import FrameType
from typing import Any

import uvicorn

from service.app.state import ServiceState, state_of
from service.plumbing.settings import Settings


class RectifierServer(uvicorn.Server):
    """uvicorn's server, with readiness off at the first SIGTERM/SIGINT, an optional delay
    before the listener closes, and exit status 0 after a graceful stop."""

    def __init__(self, config: Any, state: ServiceState, shutdown_delay_s: float = 0.0) -> None:
        super().__init__(config)
        self.service_state = state
        self.shutdown_delay_s = shutdown_delay_s
        self.fatal_error: str | None = None
        self._delay_timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.service_state.draining = True
        if self.shutdown_delay_s > 0 and self._delay_timer is None:
            self._delay_timer = threading.Timer(self.shutdown_delay_s, self._stop)
            self._delay_timer.daemon = True
            self._delay_timer.start()
            return
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after shutting down, which makes the exit status
        # -15; a graceful stop is a success, so exit normally instead.
        getattr(self, "_captured_signals", []).clear()

    def _stop(self) -> None:
        self.should_exit = True

    def fail(self, reason: str) -> None:
        self.fatal_error = reason
        self.should_exit = True


def build_server(settings: Settings, host: str, port: int) -> RectifierServer:
    """The app and the uvicorn server (uvloop, httptools with bounded request heads)."""
    from service.app.factory import create_app
    from service.run.http_limits import limited_protocol

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        # httptools with bounds on request heads: size, header count, time to arrive
        http=limited_protocol(settings.body_timeout_s),
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    state = state_of(app)
    server = RectifierServer(config, state, settings.shutdown_delay_s)
    state.on_fatal = server.fail
    return server
