"""Decode and preprocess one upload into the model's input tensor, for the service.

The decoders are ``model.decoding`` (shared with training, torch-free); this adapter times
the two phases and turns a ``DecodeError`` into the API's ``APIError`` (same code, same
message). Everything after decoding is ``model.preprocess.preprocess_image``, the same code
training evaluates with.

A raster upload can be opened first (``open_upload``: the header only) and decoded later
(``decode_into`` with ``opened``), so the pipeline learns an image's size, and with it
the decode's cost, before it chooses where to pay it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.card import Preprocessing
from model.decoding import DecodeError
from model.decoding import decode_image as decode_bytes
from model.decoding.images import SUPPORTED_FORMATS, load_raster, open_raster
from model.decoding.sniff import is_dicom
from model.preprocess import preprocess_image
from service.plumbing.errors import APIError


@dataclass(frozen=True)
class PhaseTimes:
    decode_s: float
    preprocess_s: float


@contextmanager
def decode_errors_as_api_errors() -> Iterator[None]:
    """The one place a ``DecodeError`` becomes the API's ``APIError`` (same code, same
    message, same detail)."""
    try:
        yield
    except DecodeError as exc:
        raise APIError(exc.code, exc.message, exc.detail) from exc


def decode_image(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image:
    """``model.decoding.decode_image``, failing with ``APIError``. The caller closes it."""
    with decode_errors_as_api_errors():
        return decode_bytes(data, spec, max_pixels)


def open_upload(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image | None:
    """A raster upload opened, not decoded: header read and checked (format, frame, pixel
    count), a JPEG's draft scale set, so ``image.size`` is what its decode will produce.
    None for DICOM and empty bodies, which ``decode_into`` reads (or refuses) whole."""
    if not data or is_dicom(data):
        return None
    with decode_errors_as_api_errors():
        return open_raster(data, spec, max_pixels)


def decode_into(
    data: bytes,
    spec: Preprocessing,
    max_pixels: int,
    out: np.ndarray,
    opened: Image.Image | None = None,
) -> PhaseTimes:
    """Decode ``data`` and write its normalised (C, H, W) tensor into ``out``.

    ``opened``: ``open_upload(data, ...)``'s image, when the caller opened it already (its
    header time is the caller's to count); it is decoded and closed here.
    """
    started = time.perf_counter()
    with decode_errors_as_api_errors():
        image = load_raster(opened) if opened is not None else decode_bytes(data, spec, max_pixels)
    decoded = time.perf_counter()
    try:
        preprocess_image(image, spec, out=out)
    except Exception as exc:  # an exotic mode Pillow cannot convert
        fmt = SUPPORTED_FORMATS.get(image.format or "", image.format or "decoded")
        raise APIError(
            "invalid_image",
            f"cannot convert the {fmt} image (mode {image.mode}) to {spec.color_mode}: {exc}",
            {"format": fmt, "mode": image.mode},
        ) from exc
    finally:
        image.close()
    return PhaseTimes(decoded - started, time.perf_counter() - decoded)
