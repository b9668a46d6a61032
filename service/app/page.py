"""``GET /``: the browser page, static files shipped inside the service package.

Three files (HTML, CSS, JS) read once from ``service/static`` and served with a strict
Content-Security-Policy: scripts, styles and connections only from this origin, no inline
code, no framing. The page talks to the server only through the public HTTP API.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import Response

from service.plumbing.errors import APIError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_FILES: dict[str, str] = {  # the only files served, with their media types
    "index.html": "text/html; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["page"], include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


def static_response(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise APIError(
            "not_found",
            f"no static file {name!r}; the page has: {', '.join(STATIC_FILES)}",
        )
    return Response(_read(name), media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/")
async def page() -> Response:
    return static_response("index.html")


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    return static_response(name)
