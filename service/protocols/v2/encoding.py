"""HTTP content codings for V2 bodies: bounded request decompression, optional response
compression.

``tritonclient.http`` compresses the whole request body (JSON header and binary tensors) with
``gzip.compress`` or ``zlib.compress`` and sets ``Content-Encoding``; the
``Inference-Header-Content-Length`` header then counts bytes of the *decompressed* body. It
also sends ``Accept-Encoding`` when asked to, and decompresses a response whose
``Content-Encoding`` says gzip or deflate.
"""

from __future__ import annotations

import gzip
import zlib

from service.protocols.v2.errors import V2Error

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
SUPPORTED_CODINGS = ("gzip", "deflate", "identity")
# Compressing a few hundred bytes costs more than it saves.
MIN_COMPRESSED_RESPONSE_BYTES = 512


def decode_content(body: bytes, content_encoding: str | None, *, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (applied codings are undone last to first).

    The output is capped at ``max_bytes`` while inflating, so a small compressed bomb is
    refused with 413 before it can allocate its full size.
    """
    codings = _parse_codings(content_encoding)
    for coding in reversed(codings):
        if coding == "gzip":
            body = _inflate(body, (_GZIP_WBITS,), coding, max_bytes)
        else:
            # RFC 9110 deflate is the zlib format (what zlib.compress writes); some clients
            # send a raw deflate stream instead, so that is tried second.
            body = _inflate(body, (_ZLIB_WBITS, _RAW_DEFLATE_WBITS), coding, max_bytes)
    return body


def _parse_codings(content_encoding: str | None) -> list[str]:
    if not content_encoding:
        return []
    codings = []
    for token in content_encoding.split(","):
        coding = token.strip().lower()
        if coding == "x-gzip":
            coding = "gzip"
        if coding in ("", "identity"):
            continue
        if coding not in SUPPORTED_CODINGS:
            raise V2Error(
                f"unsupported Content-Encoding {token.strip()!r}: expected gzip, deflate or "
                "identity",
                status=415,
            )
        codings.append(coding)
    return codings


def _inflate(body: bytes, wbits_options: tuple[int, ...], coding: str, max_bytes: int) -> bytes:
    last_error = ""
    for wbits in wbits_options:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            last_error = str(exc)
            continue
        if len(out) > max_bytes:
            raise V2Error(
                f"the {coding}-decoded request body exceeds the limit of {max_bytes} bytes",
                status=413,
            )
        if not inflater.eof:
            raise V2Error(f"the {coding} request body is truncated (the stream does not end)")
        if inflater.unused_data:
            raise V2Error(
                f"the {coding} request body has {len(inflater.unused_data)} bytes after the end "
                "of the compressed stream"
            )
        return out
    raise V2Error(f"the request body is not valid {coding} data: {last_error}")


def choose_response_coding(accept_encoding: str | None) -> str | None:
    """The coding to compress a response with: gzip or deflate when the client lists it
    (with a non-zero q), preferring gzip as Triton does; else None."""
    if not accept_encoding:
        return None
    accepted = set()
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        quality = params.strip()
        if quality.startswith("q="):
            try:
                if float(quality[2:]) <= 0:
                    continue
            except ValueError:
                continue
        accepted.add(coding.strip().lower())
    for coding in ("gzip", "deflate"):
        if coding in accepted:
            return coding
    return None


def encode_content(body: bytes, coding: str | None) -> tuple[bytes, str | None]:
    """Compress ``body`` with ``coding``; small bodies go out as they are."""
    if coding is None or len(body) < MIN_COMPRESSED_RESPONSE_BYTES:
        return body, None
    if coding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0), "gzip"
    return zlib.compress(body, 6), "deflate"
