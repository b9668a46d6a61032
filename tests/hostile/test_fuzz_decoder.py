"""Property tests: whatever bytes arrive, the image decoder and the multipart parser answer
with their own error (``APIError``, a 4xx) or a finite tensor, never another exception
(which the server would turn into a 500) and never a tensor with NaN in it.

Inputs are arbitrary bytes and, more usefully, valid images of every accepted format with
hypothesis-chosen damage: bytes flipped, cut, inserted, header fields overwritten. The V2
request parser has the same property in ``tests/service/v2/test_v2_fuzz.py``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.card import Preprocessing
from service.inference.decode_upload import decode_into
from service.plumbing.errors import ERROR_STATUS, APIError
from service.protocols.v1.uploads import images_from_multipart
from tests.helpers.dicom import SYNTAXES, ct_bytes
from tests.helpers.images import encode, scene
from tests.helpers.multipart import BOUNDARY, MULTIPART
from tests.hostile.strategies import multipart_bodies

# Pillow's own warnings for what these tests make on purpose (the service ignores them).
pytestmark = pytest.mark.filterwarnings(
    "ignore::PIL.Image.DecompressionBombWarning",
    "ignore:Corrupt EXIF data:UserWarning",
    "ignore:Tag data larger than file:UserWarning",
    "ignore::UserWarning:pydicom",  # pydicom on damaged files (the service silences it too)
)
MAX_PIXELS = 4_000_000
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECS = {
    "RGB": Preprocessing(
        color_mode="RGB", resize_size=36, crop_size=32, mean=(0.5, 0.5, 0.5), std=(0.25,) * 3
    ),
    "L": Preprocessing(color_mode="L", resize_size=36, crop_size=32, mean=(0.5,), std=(0.25,)),
}


def _seeds() -> dict[str, bytes]:
    photo = scene(40, 32, seed=11)
    return {
        "png": encode(photo, "PNG"),
        "png_palette": encode(photo.quantize(16), "PNG", transparency=0),
        "jpeg": encode(photo, "JPEG", quality=80),
        "jpeg_progressive": encode(photo, "JPEG", progressive=True),
        "gif": encode(photo.quantize(32), "GIF"),
        "bmp": encode(photo, "BMP"),
        "tiff": encode(photo, "TIFF", compression="tiff_lzw"),
        "webp": encode(photo, "WEBP", quality=60),
        "dicom": ct_bytes(size=40),
        "dicom_rle": ct_bytes(size=40, syntax=SYNTAXES["rle"]),
        "dicom_jpegls": ct_bytes(size=40, syntax=SYNTAXES["jpegls"]),
        "dicom_j2k": ct_bytes(size=40, syntax=SYNTAXES["j2k"]),
    }


SEEDS = _seeds()


def decode_or_refuse(data: bytes, mode: str) -> None:
    """The property itself: an APIError with a known code, or a finite tensor."""
    spec = SPECS[mode]
    out = np.full((spec.channels, spec.crop_size, spec.crop_size), np.nan, dtype=np.float32)
    try:
        decode_into(data, spec, MAX_PIXELS, out)
    except APIError as exc:
        # Damage to a DICOM header can name another transfer syntax (415) or frame count.
        known = {"invalid_image", "image_too_large", "unsupported_media_type", "multiple_frames"}
        assert exc.code in known, exc.code
        assert ERROR_STATUS[exc.code] in (400, 413, 415, 422)
        assert exc.message
        return
    assert np.isfinite(out).all(), "decoded, but left NaN in the tensor"


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "overwrite", "zero"]))
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[where:]
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "overwrite":  # often lands on a header field: sizes, counts, offsets
            value = draw(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
            data[where : where + 4] = struct.pack("<I", value)
        elif kind == "zero":
            length = draw(st.integers(1, 64))
            data[where : where + length] = bytes(len(data[where : where + length]))
    return bytes(data)


@FUZZ
@given(data=st.binary(max_size=4096), mode=st.sampled_from(sorted(SPECS)))
def test_arbitrary_bytes_are_refused_cleanly(data: bytes, mode: str) -> None:
    decode_or_refuse(data, mode)


@FUZZ
@given(data=damaged(), mode=st.sampled_from(sorted(SPECS)))
def test_damaged_images_decode_or_are_refused_cleanly(data: bytes, mode: str) -> None:
    decode_or_refuse(data, mode)


@FUZZ
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1))
def test_any_claimed_size_is_checked_before_decoding(width: int, height: int) -> None:
    """A PNG header may claim any size (checksum fixed): decoded or refused, never a crash;
    past the pixel limit it is refused as too large, before any pixel is allocated."""
    data = bytearray(SEEDS["png"])
    data[16:24] = struct.pack(">II", width, height)  # IHDR width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    decode_or_refuse(bytes(data), "RGB")
    if width * height > MAX_PIXELS:
        with pytest.raises(APIError) as caught:
            decode_into(bytes(data), SPECS["RGB"], MAX_PIXELS, np.empty((3, 32, 32), np.float32))
        assert caught.value.code == "image_too_large"


# ------------------------------------------------------------------------------ multipart


@FUZZ
@given(body=multipart_bodies())
def test_multipart_parser_refuses_cleanly(body: bytes) -> None:
    try:
        images = images_from_multipart(body, MULTIPART)
    except APIError as exc:
        assert exc.code in {"invalid_multipart", "missing_image"}, exc.code
        return
    assert images and all(isinstance(image, bytes) for image in images)


@FUZZ
# Starlette decodes header values as latin-1, so that is the alphabet a boundary can have.
@given(
    body=st.binary(max_size=512), boundary=st.text(st.characters(max_codepoint=255), max_size=80)
)
def test_multipart_arbitrary_body_and_boundary(body: bytes, boundary: str) -> None:
    content_type = f"multipart/form-data; boundary={boundary}"
    try:
        images_from_multipart(f"--{BOUNDARY}\r\n".encode() + body, content_type)
    except APIError as exc:
        assert exc.code in {"invalid_multipart", "missing_image"}, exc.code
