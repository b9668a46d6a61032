"""Decode raster images with Pillow, safely: JPEG (and camera MPO), PNG (and APNG), WebP,
BMP, GIF, TIFF, and the Netpbm formats (PPM/PGM, GTSRB's).

The pixel count is checked from the header before any pixel is decoded. JPEGs are decoded
straight to about the model's size (``prepare_decode``). Multi-frame files follow
``model.decoding.frames``; a camera MPO is one picture (its extra frames are previews), so
it decodes as its primary JPEG.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, UnidentifiedImageError

from model.card import Preprocessing
from model.decoding.errors import DecodeError
from model.decoding.frames import choose_frame
from model.decoding.limits import check_size
from model.decoding.sniff import describe_content
from model.preprocess import prepare_decode

# Pillow format names we decode -> the name we report.
SUPPORTED_FORMATS: dict[str, str] = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "GIF": "GIF",
    "TIFF": "TIFF",
    "PPM": "PPM",
}
SUPPORTED_LIST = "JPEG, PNG, WebP, BMP, GIF, TIFF, PPM, DICOM"
# JPEG's opener also yields MPO; PPM's reads PGM and PBM too.
_OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM"]
_SUPPORTED_NAMES = frozenset(SUPPORTED_FORMATS.values())

# Our own pixel limit runs first; Pillow's bomb warning would only add log noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


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
        found = describe_content(data)
        other = _identify_other(data)
        if other is not None:
            message = f"{other} images are not supported; send {SUPPORTED_LIST}"
        elif found in _SUPPORTED_NAMES:  # the signature is right, the header is not
            message = (
                f"the data starts with a {found} signature but is not a readable {found} image"
            )
        else:
            message = f"not a supported image: found {found}; send {SUPPORTED_LIST}"
        raise DecodeError("invalid_image", message, {"format": other or found}) from exc
    except Exception as exc:  # malformed headers raise OSError, SyntaxError, ValueError...
        found = describe_content(data)
        raise DecodeError(
            "invalid_image", f"cannot read the image header ({found}): {exc}", {"format": found}
        ) from exc


def _bomb(fmt: str | None, exc: Exception) -> DecodeError:
    """Pillow's own (higher) bomb limit tripped while reading the header."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = f" ({match.group(1)} pixels)" if match else ""
    return DecodeError(
        "image_too_large", f"the {fmt} image has far too many pixels{pixels}", {"format": fmt}
    )


def _frame_count(image: Image.Image) -> int:
    if image.format == "MPO":
        return 1
    return int(getattr(image, "n_frames", 1))


def open_raster(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image:
    """Bytes -> an opened Pillow image, its header read and checked (format, frame, pixel
    count) and a JPEG's draft scale set, no pixel decoded yet; or ``DecodeError``.

    ``image.size`` is then what ``load_raster`` will decode, so a caller can tell the
    decode's cost before paying it (the service decodes small images on its event loop).
    The caller loads and closes the image.
    """
    image = _open(data)
    fmt = raster_format(image)
    try:
        index = choose_frame(fmt, _frame_count(image), spec.frame)
        if index:
            image.seek(index)
        width, height = image.size
        check_size(fmt, width, height, spec, max_pixels)
        prepare_decode(image, spec)
    except DecodeError:
        image.close()
        raise
    except Image.DecompressionBombError as exc:
        image.close()
        raise _bomb(fmt, exc) from exc
    except Exception as exc:
        image.close()
        raise _corrupt(fmt, exc) from exc
    return image


def load_raster(image: Image.Image) -> Image.Image:
    """Decode the pixels of an image from ``open_raster`` (closed on failure)."""
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        image.close()
        raise _bomb(raster_format(image), exc) from exc
    except Exception as exc:  # truncated or corrupt pixel data
        image.close()
        raise _corrupt(raster_format(image), exc) from exc
    return image


def decode_raster(data: bytes, spec: Preprocessing, max_pixels: int) -> Image.Image:
    """Bytes -> a loaded Pillow image (the chosen frame), or ``DecodeError``.

    The caller closes the image.
    """
    return load_raster(open_raster(data, spec, max_pixels))


def raster_format(image: Image.Image) -> str:
    """The format name we report for an image Pillow opened."""
    return SUPPORTED_FORMATS.get(image.format or "", image.format or "unknown")


def _corrupt(fmt: str, exc: Exception) -> DecodeError:
    reason = str(exc) or type(exc).__name__
    what = "truncated" if "truncated" in reason.lower() else "corrupt"
    return DecodeError("invalid_image", f"the {fmt} image is {what}: {reason}", {"format": fmt})
