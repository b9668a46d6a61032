"""One error shape for every 4xx and 5xx: ``{"error": {"code", "message", "detail"}}``.

``APIError`` carries a code from ``ERROR_STATUS`` (the vocabulary clients and tests rely
on); the handlers here also translate FastAPI's own 404, 405 and 422 and any unexpected
exception (500 ``internal_error`` with the request id) into that shape. Routers under
another protocol (the Open Inference Protocol's ``{"error": "..."}``) get their own
renderer for their path prefix, passed to ``install_error_handlers``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

ERROR_STATUS: dict[str, int] = {
    "invalid_request": 400,  # malformed HTTP, refused by the protocol layer (http_limits.py)
    "invalid_image": 400,
    "missing_image": 400,
    "invalid_multipart": 400,
    "unauthorized": 401,
    "not_found": 404,
    "model_not_found": 404,
    "version_not_found": 404,
    "method_not_allowed": 405,
    "reload_failed": 409,  # the old versions keep serving (reload.py)
    "reload_unavailable": 409,  # several worker processes: restart instead (reload.py)
    "not_explainable": 409,  # exported without class-activation maps (explain.py)
    "request_timeout": 408,
    "payload_too_large": 413,
    "image_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_parameter": 422,
    "multiple_frames": 422,  # a multi-frame image and no frame chosen (model/decoding/frames.py)
    "headers_too_large": 431,
    "internal_error": 500,
    "not_ready": 503,
    "queue_full": 503,
    # DICOMweb (service/protocols/dicomweb/): the PACS named by its role, never by its data
    "pacs_unauthorized": 401,  # the PACS refused Rectifier's own credentials
    "study_not_found": 404,
    "pacs_not_configured": 409,
    "study_too_large": 413,
    "pacs_error": 502,  # unreachable, or an error status from the PACS
    "pacs_store_failed": 502,  # the report could not be stored; predictions in detail
    "pacs_timeout": 504,
}


class APIError(Exception):
    """An error answered to the client with ``ERROR_STATUS[code]``."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown error code {code!r}; known: {sorted(ERROR_STATUS)}")
        super().__init__(message)
        self.code = code
        self.status_code = ERROR_STATUS[code]
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})


ErrorRenderer = Callable[[Request, APIError], Response]


class JSONBytesResponse(JSONResponse):
    """JSON rendered with orjson (NumPy arrays and scalars included).

    A ``JSONResponse`` subclass, so FastAPI documents the response models in OpenAPI (for
    any other class it declares the body a plain string, which schema checks then flag).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error_body(error: APIError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message, "detail": error.detail}
    if request_id is not None:
        body["request_id"] = request_id
    return {"error": body}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def render_default(request: Request, error: APIError) -> Response:
    return JSONBytesResponse(
        error_body(error, request_id_of(request)),
        status_code=error.status_code,
        headers=error.headers,
    )


class ErrorRendering:
    """Picks the renderer for a request's path: a protocol's, or the V1 shape."""

    def __init__(self, renderers: Sequence[tuple[str, ErrorRenderer]]) -> None:
        self._renderers = tuple(renderers)

    def render(self, request: Request, error: APIError) -> Response:
        for prefix, renderer in self._renderers:
            if request.url.path.startswith(prefix):
                return renderer(request, error)
        return render_default(request, error)

    async def api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return self.render(request, exc)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        return self.render(request, _from_http_error(request, exc))

    async def validation_error(self, request: Request, exc: Exception) -> Response:
        return self.render(request, _from_validation_error(exc))

    async def unexpected_error(self, request: Request, exc: Exception) -> Response:
        # This handler runs outside the request-id middleware: echo the id here.
        return self.render(request, _internal_error(request, echo_request_id=True))

    async def unexpected_error_inside(self, request: Request, exc: Exception) -> Response:
        # Inside the app: the request-id middleware adds the header to this answer.
        return self.render(request, _internal_error(request, echo_request_id=False))


def _from_http_error(request: Request, exc: Exception) -> APIError:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        error = APIError("not_found", f"no route for {request.method} {request.url.path}")
    elif exc.status_code == 405:
        allowed = headers.get("Allow", headers.get("allow", ""))
        error = APIError(
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}"
            + (f"; allowed: {allowed}" if allowed else ""),
            headers=headers,
        )
    else:  # an HTTPException raised by FastAPI or Starlette internals with another status
        code = {401: "unauthorized", 413: "payload_too_large", 415: "unsupported_media_type"}
        error = APIError(
            code.get(exc.status_code, "invalid_parameter"), str(exc.detail), headers=headers
        )
    return error


def _from_validation_error(exc: Exception) -> APIError:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "location": [str(part) for part in err.get("loc", ())],
            "message": err.get("msg", ""),
        }
        for err in exc.errors()
    ]
    names = ", ".join(".".join(p["location"][1:]) or p["location"][0] for p in problems)
    return APIError("invalid_parameter", f"invalid parameter: {names}", problems)


def _internal_error(request: Request, *, echo_request_id: bool) -> APIError:
    request_id = request_id_of(request)
    log.exception(
        "unhandled error in %s %s (request %s)", request.method, request.url.path, request_id
    )
    return APIError(
        "internal_error",
        f"internal error; quote request id {request_id} when reporting it",
        headers={"X-Request-ID": request_id} if request_id and echo_request_id else None,
    )


async def _client_gone(request: Request, exc: Exception) -> Response:
    # Nobody reads this answer; 499 (nginx's "client closed request") keeps logs honest.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=499)


_UNEXPECTED_BASES: tuple[type[Exception], ...] = (
    RuntimeError,  # includes the batcher's InferenceError (a model failing in session.run)
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    ArithmeticError,
    AssertionError,
    OSError,
    MemoryError,
)


def install_error_handlers(
    app: FastAPI, renderers: Sequence[tuple[str, ErrorRenderer]] = ()
) -> None:
    """Every error in one shape; routes under a ``renderers`` prefix in their protocol's."""
    rendering = ErrorRendering(renderers)
    app.add_exception_handler(APIError, rendering.api_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(StarletteHTTPException, rendering.http_error)
    app.add_exception_handler(RequestValidationError, rendering.validation_error)
    # A handler for ``Exception`` itself runs in Starlette's outermost middleware, which
    # re-raises after answering, so uvicorn logs the error again and closes the keep-alive
    # connection under the client's next request. Handlers for the common concrete bases
    # run inside the app instead: the 500 is answered and the connection stays usable.
    for base in _UNEXPECTED_BASES:
        app.add_exception_handler(base, rendering.unexpected_error_inside)
    app.add_exception_handler(Exception, rendering.unexpected_error)
