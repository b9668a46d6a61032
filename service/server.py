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


class RectifierServer(uvicorn.Server):
    """uvicorn's server, with readiness off at the first SIGTERM/SIGINT, an optional delay
    before the listener closes, and exit status 0 after a graceful stop."""

    def __init__(self, config: Any, state: Any, shutdown_delay_s: float = 0.0) -> None:
        super().__init__(config)
        self.app_state = state
        self.shutdown_delay_s = shutdown_delay_s
        self.fatal_error: str | None = None
        self._delay_timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.app_state.draining = True
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
