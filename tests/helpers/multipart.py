"""multipart/form-data bodies written by hand, byte for byte, from (field, filename,
content type, data) parts."""

from __future__ import annotations

import io
from collections.abc import Sequence

BOUNDARY = "rectifier-hostile-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
Part = tuple[str, str | None, str | None, bytes]


def multipart(parts: Sequence[Part], boundary: str = BOUNDARY) -> bytes:
    """(field name, filename, content type, data) parts -> a multipart/form-data body."""
    out = io.BytesIO()
    for name, filename, content_type, data in parts:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if content_type is not None:
            out.write(f"Content-Type: {content_type}\r\n".encode())
        out.write(b"\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()
