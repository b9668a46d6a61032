"""The pixel bound every decoder checks from its header, before any pixel is decoded, so a
decompression bomb costs a few hundred bytes of parsing, not gigabytes."""

from __future__ import annotations

from model.card import Preprocessing
from model.decoding.errors import DecodeError


def check_size(fmt: str, width: int, height: int, spec: Preprocessing, max_pixels: int) -> None:
    """Refuse images whose decoded or resized pixel count would exceed ``max_pixels``."""
    if width < 1 or height < 1:
        raise DecodeError("invalid_image", f"the {fmt} image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise DecodeError(
            "image_too_large",
            f"the {fmt} image is {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels}",
            {"width": width, "height": height, "max_pixels": max_pixels},
        )
    resized = resized_pixels(width, height, spec)
    if resized > max_pixels:
        raise DecodeError(
            "image_too_large",
            f"the {fmt} image is {width}x{height}: resizing its shorter side to "
            f"{spec.resize_size} would make {resized} pixels; the limit is {max_pixels}",
            {"width": width, "height": height, "max_pixels": max_pixels},
        )


def resized_pixels(width: int, height: int, spec: Preprocessing) -> int:
    """Pixels after resizing the shorter side to ``resize_size`` (which can blow up a very
    thin image): what preprocessing will produce before its centre crop."""
    scale = spec.resize_size / min(width, height)
    return round(width * scale) * round(height * scale)
