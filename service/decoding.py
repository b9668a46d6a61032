"""Decode uploaded image bytes with Pillow, safely, into the model's input tensor.

Accepted: JPEG (and camera MPO), PNG, WebP, BMP, GIF (first frame), TIFF (first page).
The pixel count is checked from the header, before any pixel is decoded, so a
decompression bomb costs a few hundred bytes of parsing, not gigabytes. JPEGs are decoded
straight to about the model's size (``prepare_decode``). Everything after decoding is
``model.preprocess.preprocess_image``, the same code training evaluates with.
"""

from __future__ import annotations

import io
import re
import time
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from model.card import Preprocessing
from model.preprocess import prepare_decode, preprocess_image
from service.errors import APIError

# Pillow format names we decode -> the name we report.
SUPPORTED_FORMATS: dict[str, str] = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "GIF": "GIF",
    "TIFF": "TIFF",
}
SUPPORTED_LIST = "JPEG, PNG, WebP, BMP, GIF, TIFF"
_OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"]  # JPEG's opener also yields MPO

# Our own pixel limit runs first; Pillow's bomb warning would only add log noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

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
    (b"RIFF", "RIFF (WebP)"),
)


@dataclass(frozen=True)
class PhaseTimes:
    decode_s: float
    preprocess_s: float


def describe_content(data: bytes) -> str:
    """A short human name for what the bytes look like (for error messages)."""
    head = data[:512]
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
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


def _identify_other(data: bytes) -> str | None:
    """The Pillow format of an image we do not accept (ICO, PSD, ...), if it is one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except Exception:  # anything Pillow cannot even identify
        return None


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _bomb(describe_content(data), exc) from exc
    except UnidentifiedImageError as exc:
        other = _identify_other(data)
        if other is not None:
            message = f"{other} images are not supported; send {SUPPORTED_LIST}"
        else:
            message = (
                f"not a supported image: found {describe_content(data)}; send {SUPPORTED_LIST}"
            )
        raise APIError("invalid_image", message, {"format": other}) from exc
    except Exception as exc:  # malformed headers raise OSError, SyntaxError, ValueError...
        found = describe_content(data)
        raise APIError(
            "invalid_image", f"cannot read the image header ({found}): {exc}", {"format": found}
        ) from exc


def _bomb(fmt: str | None, exc: Exception) -> APIError:
    """Pillow's own (higher) bomb limit tripped while reading the header."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = f" ({match.group(1)} pixels)" if match else ""
    return APIError(
        "image_too_large",
        f"the {fmt} image has far too many pixels{pixels}",
        {"format": fmt},
    )


def check_size(image: Image.Image, spec: Preprocessing, max_pixels: int) -> None:
    """Refuse images whose decoded or resized pixel count would exceed ``max_pixels``."""
    width, height = image.size
    fmt = SUPPORTED_FORMATS.get(image.format or "", image.format)
    if width < 1 or height < 1:
        raise APIError("invalid_image", f"the {fmt} image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise APIError(
            "image_too_large",
            f"the {fmt} image is {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels}",
            {"width": width, "height": height, "max_pixels": max_pixels},
        )
    # Resizing the shorter side to resize_size can blow up a very thin image.
    scale = spec.resize_size / min(width, height)
    resized = round(width * scale) * round(height * scale)
    if resized > max_pixels:
        raise APIError(
            "image_too_large",
            f"the {fmt} image is {width}x{height}: resizing its shorter side to "
            f"{spec.resize_size} would make {resized} pixels; the limit is {max_pixels}",
            {"width": width, "height": height, "max_pixels": max_pixels},
        )


def decode_image(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image:
    """Bytes -> a loaded Pillow image (first frame/page), or ``APIError``.

    The caller closes the image.
    """
    if not data:
        raise APIError("invalid_image", "the image is empty (0 bytes)", {"format": None})
    image = _open(data)
    fmt = SUPPORTED_FORMATS.get(image.format or "", image.format or "unknown")
    try:
        check_size(image, spec, max_pixels)
        prepare_decode(image, spec)
        image.load()
    except APIError:
        image.close()
        raise
    except Image.DecompressionBombError as exc:
        image.close()
        raise _bomb(fmt, exc) from exc
    except Exception as exc:  # truncated or corrupt pixel data
        image.close()
        reason = str(exc) or type(exc).__name__
        what = "truncated" if "truncated" in reason.lower() else "corrupt"
        raise APIError(
            "invalid_image", f"the {fmt} image is {what}: {reason}", {"format": fmt}
        ) from exc
    return image


def decode_into(data: bytes, spec: Preprocessing, max_pixels: int, out: np.ndarray) -> PhaseTimes:
    """Decode ``data`` and write its normalised (C, H, W) tensor into ``out``."""
    started = time.perf_counter()
    image = decode_image(data, spec, max_pixels)
    decoded = time.perf_counter()
    try:
        preprocess_image(image, spec, out=out)
    except Exception as exc:  # an exotic mode Pillow cannot convert
        fmt = SUPPORTED_FORMATS.get(image.format or "", image.format)
        raise APIError(
            "invalid_image",
            f"cannot convert the {fmt} image (mode {image.mode}) to {spec.color_mode}: {exc}",
            {"format": fmt, "mode": image.mode},
        ) from exc
    finally:
        image.close()
    return PhaseTimes(decoded - started, time.perf_counter() - decoded)
