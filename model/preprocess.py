"""Card-driven evaluation preprocessing, shared by training evaluation and the service.

PIL and NumPy only (no torch), so the service image can import it. Training evaluates
through exactly these functions, which is what makes train/serve parity hold by
construction: an image file gives the same tensor in both places (bytes become an image
in ``model.decoding``, also shared).

Grayscale wider than 8 bits (16-bit PNG/TIFF, DICOM's display values) stays float (PIL
mode ``F`` on a 0..255 scale) through resizing and cropping, so it is never rounded to 8
bits on the way to the model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps

from model.card import Preprocessing

_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# Modes holding more than 8 bits per sample; PIL's convert() would clip them to 255.
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def prepare_decode(image: Image.Image, spec: Preprocessing) -> None:
    """Ask the decoder for a reduced image where the format allows it (JPEG DCT scaling).

    Must run before the pixels are loaded. The result stays at least ``resize_size`` on
    both sides, so the final resize still does the real downsampling.
    """
    if image.format == "JPEG":
        image.draft(spec.color_mode, (spec.resize_size, spec.resize_size))


def to_color_mode(image: Image.Image, color_mode: str) -> Image.Image:
    """Convert any PIL mode to 8-bit ``L`` or ``RGB``; transparency is composited on white.

    For training augmentation, which works on 8-bit images; evaluation and serving keep
    wide grayscale precise (``to_model_mode``).
    """
    if image.mode in _WIDE_MODES:
        image = _wide_to_float(image)
        image = Image.fromarray(np.rint(np.asarray(image)).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != color_mode:
        image = image.convert(color_mode)
    return image


def to_model_mode(image: Image.Image, color_mode: str) -> Image.Image:
    """``to_color_mode``, except that wide grayscale becomes mode ``F`` (0..255), unrounded;
    ``normalize_into`` repeats it over the channels of an RGB model."""
    if image.mode in _WIDE_MODES:
        return _wide_to_float(image)
    return to_color_mode(image, color_mode)


def _wide_to_float(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    if image.mode != "F":  # integer images: 16-bit range (PNG and TIFF store 16 bits)
        pixels = pixels * np.float32(1.0 / 257.0)
    return Image.fromarray(np.clip(pixels, 0.0, 255.0), mode="F")


def resize_and_crop(image: Image.Image, spec: Preprocessing) -> Image.Image:
    """Resize the shorter side to ``resize_size``, then centre-crop ``crop_size`` square."""
    width, height = image.size
    short = min(width, height)
    if short != spec.resize_size:
        scale = spec.resize_size / short
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, _RESAMPLING[spec.interpolation], reducing_gap=None)
        width, height = image.size
    crop = spec.crop_size
    if (width, height) != (crop, crop):
        left = round((width - crop) / 2)
        top = round((height - crop) / 2)
        image = image.crop((left, top, left + crop, top + crop))
    return image


def normalize_into(image: Image.Image, spec: Preprocessing, out: np.ndarray) -> None:
    """Write the normalised CHW float32 tensor of a ``crop_size`` image into ``out``.

    ``(x / 255 - mean) / std`` is folded into one multiply and one subtract over all
    channels, straight from the image's own dtype (8-bit pixels convert to float32 exactly).
    """
    pixels = np.asarray(image)
    # HWC -> CHW view; a grayscale plane is broadcast over the channels of an RGB model.
    planes = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)[: spec.channels]
    scale, offset = _affine(spec.mean, spec.std)
    np.multiply(planes, scale, out=out, dtype=np.float32)
    np.subtract(out, offset, out=out)


@lru_cache(maxsize=64)
def _affine(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``1 / (255 std)`` and ``mean / std`` as float32 (C, 1, 1) arrays."""
    scale = np.array([1.0 / (255.0 * s) for s in std], dtype=np.float32)
    offset = np.array([m / s for m, s in zip(mean, std, strict=True)], dtype=np.float32)
    return scale.reshape(-1, 1, 1), offset.reshape(-1, 1, 1)


def model_view(image: Image.Image, spec: Preprocessing) -> Image.Image:
    """Decoded PIL image -> the ``crop_size`` image the model sees, before normalisation."""
    image = ImageOps.exif_transpose(image)
    image = to_model_mode(image, spec.color_mode)
    return resize_and_crop(image, spec)


def preprocess_image(
    image: Image.Image, spec: Preprocessing, out: np.ndarray | None = None
) -> np.ndarray:
    """Decoded PIL image -> normalised float32 array of shape (C, crop, crop)."""
    image = model_view(image, spec)
    if out is None:
        out = np.empty((spec.channels, spec.crop_size, spec.crop_size), dtype=np.float32)
    normalize_into(image, spec, out)
    return out
