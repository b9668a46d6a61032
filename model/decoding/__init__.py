"""Encoded bytes -> a decoded image, one module per format family, shared by the service
and training (as ``model.preprocess`` is): ``images`` (Pillow), ``dicom`` (pydicom).

Torch-free. The format is told by the bytes, never by a file name or content type: DICOM
by its ``DICM`` marker, everything else by Pillow. pydicom is optional (the ``dicom``
extra): without it a DICOM input is refused with 415, naming the extra.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from model.card import Preprocessing
from model.decoding.errors import DecodeError
from model.decoding.images import decode_raster
from model.decoding.sniff import describe_content, is_dicom
from model.preprocess import preprocess_image

__all__ = ["DecodeError", "decode_image", "describe_content", "load_and_preprocess"]

# Files read by training have no upload limit; this only stops a corrupt header.
FILE_MAX_PIXELS = 1 << 30

Decoder = Callable[[bytes, Preprocessing, int], Image.Image]


def decode_image(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image:
    """Bytes -> a loaded PIL image (``L``/``RGB``/... from Pillow, ``F`` or ``RGB`` from
    DICOM), or ``DecodeError``. ``spec.frame`` picks one frame of a multi-frame input (a
    request that chooses a frame passes the card's spec with its own ``frame``). The caller
    closes the image."""
    if not data:
        raise DecodeError("invalid_image", "the image is empty (0 bytes)", {"format": None})
    if is_dicom(data):
        return _dicom_decoder()(data, spec, max_pixels)
    return decode_raster(data, spec, max_pixels)


def _dicom_decoder() -> Decoder:
    try:
        from model.decoding.dicom import decode_dicom
    except ImportError as exc:
        raise DecodeError(
            "unsupported_media_type",
            "DICOM input needs pydicom, which is not installed here "
            "(install the 'dicom' extra: pip install 'rectifier[dicom]')",
            {"format": "DICOM"},
        ) from exc
    return decode_dicom


def load_and_preprocess(path: str | Path, spec: Preprocessing) -> np.ndarray:
    """Decode an image file the way the service decodes an upload, and preprocess it."""
    image = decode_image(Path(path).read_bytes(), spec, FILE_MAX_PIXELS)
    try:
        return preprocess_image(image, spec)
    finally:
        image.close()
