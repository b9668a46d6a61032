"""Optional API keys: ``RECTIFIER_API_KEYS`` set means predict and model routes need
``Authorization: Bearer <key>``. Probes, metrics and the OpenAPI docs stay open.
Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from service.app.deps import State
from service.plumbing.errors import APIError

_CHALLENGE = 'Bearer realm="rectifier"'


def _matches(candidate: bytes, keys: list[bytes]) -> bool:
    # Compare against every key, without stopping at the first match, so timing says
    # nothing about which key (or how many) exist.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched


async def require_api_key(request: Request, state: State) -> None:
    """FastAPI dependency: passes when no keys are configured or the bearer key matches."""
    keys = state.api_keys
    if not keys:
        return
    header = request.headers.get("authorization")
    if header is None:
        raise APIError(
            "unauthorized",
            "this server needs an API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise APIError(
            "unauthorized",
            "the Authorization header must be 'Bearer <key>'",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_request"'},
        )
    if not _matches(credentials.strip().encode("utf-8", "surrogateescape"), keys):
        raise APIError(
            "unauthorized",
            "the API key is not valid",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
