"""The one error type of the V2 codec: an HTTP status and V2's one-line message.

Free of the web stack, like the whole codec; ``service.protocols.v2.routes`` answers it (and
the service's own ``APIError`` on ``/v2`` paths) in V2's shape.
"""

from __future__ import annotations

from collections.abc import Mapping


class V2Error(Exception):
    """A request the protocol refuses, answered as ``{"error": message}`` with ``status``.

    Every failure the codec can detect on client input is raised as this type, so the router
    answers it with a 4xx without guessing and anything else stays a genuine server error.
    """

    def __init__(
        self, message: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = dict(headers or {})

    @property
    def status_code(self) -> int:
        """The status, under the name the shared inference path records (``APIError``'s)."""
        return self.status
