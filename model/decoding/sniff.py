"""What uploaded bytes are, from their first bytes: for dispatch and for error messages."""

from __future__ import annotations

DICOM_MAGIC_OFFSET = 128  # a DICOM file: a 128-byte preamble, then b"DICM"

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file (the preamble may hold anything, even a TIFF header)."""
    return data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM"


def describe_content(data: bytes) -> str:
    """A short human name for what the bytes look like (for error messages)."""
    if is_dicom(data):
        return "DICOM"
    head = data[:512]
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head.startswith(b"RIFF"):
        return f"a RIFF container of type {head[8:12]!r} (not WebP)"
    text = head.lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG image (vector images are not supported)"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML document"
    if text.startswith((b"{", b"[")):
        return "JSON text"
    if text.startswith(b"<"):
        return "XML or markup text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"unrecognised binary data (first bytes {head[:8].hex(' ')})"
    return "plain text"
