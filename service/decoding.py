"""Decode and preprocess one upload into the model's input tensor, for the service.

The decoders are ``model.decoding`` (shared with training, torch-free); this adapter times
the two phases and turns a ``DecodeError`` into the API's ``APIError`` (same code, same
message). Everything after decoding is ``model.preprocess.preprocess_image``, the same code
training evaluates with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.card import Preprocessing
from model.decoding import DecodeError
from model.decoding import decode_image as decode_bytes
from model.decoding.images import SUPPORTED_FORMATS
from model.preprocess import preprocess_image
from service.errors import APIError


@dataclass(frozen=True)
class PhaseTimes:
    decode_s: float
    preprocess_s: float


def decode_image(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image:
    """``model.decoding.decode_image``, failing with ``APIError``. The caller closes it."""
    try:
        return decode_bytes(data, spec, max_pixels)
    except DecodeError as exc:
        raise APIError(exc.code, exc.message, exc.detail) from exc


def decode_into(data: bytes, spec: Preprocessing, max_pixels: int, out: np.ndarray) -> PhaseTimes:
    """Decode ``data`` and write its normalised (C, H, W) tensor into ``out``."""
    started = time.perf_counter()
    image = decode_image(data, spec, max_pixels)
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
