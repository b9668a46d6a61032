from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model.card import Preprocessing
from model.decoding import DecodeError, decode_image, describe_content, load_and_preprocess
from model.preprocess import preprocess_image
from tests.helpers.images import GRAY_SPEC, RGB_SPEC, encode, pattern, png_with_size

LIMIT = 25_000_000


def decoded(data: bytes, spec=RGB_SPEC) -> np.ndarray:
    image = decode_image(data, spec, LIMIT)
    try:
        return preprocess_image(image, spec)
    finally:
        image.close()


def expected_from_file(tmp_path, data: bytes, spec=RGB_SPEC) -> np.ndarray:
    path = tmp_path / "image"
    path.write_bytes(data)
    return load_and_preprocess(str(path), spec)


FORMATS = [
    ("JPEG", "RGB", {"quality": 90}),
    ("JPEG", "L", {}),
    ("JPEG", "CMYK", {}),
    ("PNG", "RGB", {}),
    ("PNG", "RGBA", {}),
    ("PNG", "LA", {}),
    ("PNG", "L", {}),
    ("PNG", "P", {}),
    ("PNG", "1", {}),
    ("PNG", "I;16", {}),
    ("WEBP", "RGB", {"lossless": True}),
    ("WEBP", "RGBA", {"quality": 80}),
    ("BMP", "RGB", {}),
    ("BMP", "L", {}),
    ("GIF", "P", {}),
    ("TIFF", "RGB", {}),
    ("TIFF", "I;16", {}),
    ("TIFF", "F", {}),
]


@pytest.mark.parametrize("spec", [RGB_SPEC, GRAY_SPEC], ids=["rgb-model", "gray-model"])
@pytest.mark.parametrize(
    ("fmt", "mode", "options"), FORMATS, ids=[f"{f}-{m}" for f, m, _ in FORMATS]
)
def test_every_format_and_mode_matches_training_preprocessing(tmp_path, fmt, mode, options, spec):
    image = pattern((52, 44), "RGB")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L"), np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode == "F":
        image = Image.fromarray(np.asarray(image.convert("L"), np.float32))
    else:
        image = image.convert(mode)
    data = encode(image, fmt, **options)
    got = decoded(data, spec)
    assert got.shape == (spec.channels, 32, 32)
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got, expected_from_file(tmp_path, data, spec))


def test_alpha_is_composited_on_white():
    transparent = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    got = decoded(encode(transparent, "PNG"))
    white = (1.0 - np.array(RGB_SPEC.mean)) / np.array(RGB_SPEC.std)
    np.testing.assert_allclose(got.reshape(3, -1).mean(axis=1), white, rtol=1e-5)


def test_palette_with_transparency_is_composited():
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    got = decoded(encode(image, "PNG", transparency=0))
    white = (1.0 - np.array(RGB_SPEC.mean)) / np.array(RGB_SPEC.std)
    np.testing.assert_allclose(got[:, 16, 16], white, rtol=1e-5)


def frame(index: int) -> Preprocessing:
    return RGB_SPEC.model_copy(update={"frame": index})


def two_frames(fmt: str) -> bytes:
    red, blue = Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 255))
    options = {"duration": 100} if fmt in ("GIF", "PNG", "WEBP") else {}
    if fmt == "WEBP":
        options["lossless"] = True
    return encode(red, fmt, save_all=True, append_images=[blue], **options)


MULTI_FRAME = [("GIF", "GIF"), ("TIFF", "TIFF"), ("PNG", "PNG"), ("WEBP", "WebP")]


@pytest.mark.parametrize(("fmt", "name"), MULTI_FRAME, ids=[f for f, _ in MULTI_FRAME])
def test_multi_frame_images_are_refused_naming_the_frame_count(fmt, name):
    with pytest.raises(DecodeError) as info:
        decoded(two_frames(fmt))
    assert info.value.code == "multiple_frames"
    assert f"the {name} image has 2 frames" in info.value.message
    assert "'frame' parameter (0 to 1)" in info.value.message
    assert info.value.detail == {"format": name, "frames": 2}


@pytest.mark.parametrize(("fmt", "name"), MULTI_FRAME, ids=[f for f, _ in MULTI_FRAME])
def test_a_chosen_frame_is_decoded(fmt, name):
    data = two_frames(fmt)
    first = decode_image(data, frame(0), LIMIT)
    second = decode_image(data, frame(1), LIMIT)
    red, blue = np.asarray(first.convert("RGB")), np.asarray(second.convert("RGB"))
    assert red[..., 0].mean() > 200 > red[..., 2].mean()
    assert blue[..., 2].mean() > 200 > blue[..., 0].mean()
    with pytest.raises(DecodeError) as info:
        decode_image(data, frame(2), LIMIT)
    assert info.value.code == "invalid_image"
    assert f"frame 2 was asked for, but the {name} image has 2 frames (0 to 1)" == (
        info.value.message
    )


def test_a_single_frame_image_has_only_frame_0():
    data = encode(pattern(), "PNG")
    assert decode_image(data, frame(0), LIMIT).size == (48, 40)
    with pytest.raises(DecodeError) as info:
        decode_image(data, frame(1), LIMIT)
    assert "has 1 frame (frame 0)" in info.value.message


def test_sixteen_bit_grayscale_keeps_its_precision(tmp_path):
    # Two 16-bit values 1 apart are one 8-bit step apart only after dividing by 257:
    # rounding to 8 bits would make them equal.
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 3 + 1000).astype(np.uint16)
    for fmt in ("PNG", "TIFF"):
        data = encode(Image.fromarray(ramp), fmt)
        image = decode_image(data, GRAY_SPEC, LIMIT)
        assert image.mode in ("I;16", "I")
        spec = GRAY_SPEC.model_copy(update={"resize_size": 64, "crop_size": 64})
        got = preprocess_image(image, spec)
        expected = (ramp / 257.0 / 255.0 - 0.5) / 0.25
        np.testing.assert_allclose(got[0], expected, atol=1e-5)
        assert len(np.unique(got)) == 64 * 64  # every 16-bit level survives


def test_exif_orientation_is_applied(tmp_path):
    upright = pattern((60, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers rotate 90 degrees clockwise
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    data = encode(stored, "JPEG", quality=95, exif=exif)
    got = decoded(data)
    with Image.open(io.BytesIO(data)) as raw:
        raw.load()
        assert raw.size == (30, 60)
        ignoring_exif = np.empty_like(got)
        plain = raw.copy()
        plain.info.pop("exif", None)
        plain.getexif().clear()
        preprocess_image(plain, RGB_SPEC, out=ignoring_exif)
    assert not np.allclose(got, ignoring_exif)
    np.testing.assert_array_equal(got, expected_from_file(tmp_path, data))


def test_jpeg_is_decoded_with_draft_to_about_model_size():
    data = encode(pattern((800, 600)), "JPEG")
    image = decode_image(data, RGB_SPEC, LIMIT)
    assert 36 <= min(image.size) < 600


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (6000, 5000)])
def test_pixel_bombs_are_refused_from_the_header(width, height):
    data = png_with_size(width, height)
    assert len(data) < 200
    with pytest.raises(DecodeError) as info:
        decode_image(data, RGB_SPEC, LIMIT)
    assert info.value.code == "image_too_large"
    assert str(width * height) in info.value.message


def test_huge_gif_screen_is_refused():
    data = bytearray(encode(Image.new("P", (4, 4)), "GIF"))
    data[6:10] = (65535).to_bytes(2, "little") * 2  # logical screen 65535x65535
    with pytest.raises(DecodeError) as info:
        decode_image(bytes(data), RGB_SPEC, LIMIT)
    assert info.value.code == "image_too_large"


def test_extreme_aspect_ratio_is_refused_before_resizing():
    data = encode(Image.new("L", (100000, 1)), "PNG")
    with pytest.raises(DecodeError) as info:
        decode_image(data, RGB_SPEC, LIMIT)
    assert info.value.code == "image_too_large"
    assert "resizing" in info.value.message


def test_one_pixel_image_is_accepted():
    got = decoded(encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"))
    assert np.isfinite(got).all()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF"])
def test_truncated_files_name_the_format(fmt):
    data = encode(pattern((200, 160), "RGB" if fmt != "GIF" else "P"), fmt)
    with pytest.raises(DecodeError) as info:
        decode_image(data[: len(data) // 2], RGB_SPEC, LIMIT)
    assert info.value.code == "invalid_image"
    name = {"WEBP": "WebP"}.get(fmt, fmt)
    assert name in info.value.message


def test_png_with_bad_crc_is_invalid():
    data = bytearray(encode(pattern(), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 8] ^= 0xFF  # corrupt the compressed data without fixing the CRC
    with pytest.raises(DecodeError) as info:
        decode_image(bytes(data), RGB_SPEC, LIMIT)
    assert info.value.code == "invalid_image"
    assert "PNG" in info.value.message


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"%PDF-1.7\n...", "PDF"),
        (b"PK\x03\x04\x14\x00", "ZIP"),
        (b"<!DOCTYPE html><html></html>", "HTML"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"just some words", "plain text"),
        (b"\x00\x01\x02\x03\xfe\xff", "binary"),
    ],
)
def test_non_images_name_what_was_found(data, found):
    with pytest.raises(DecodeError) as info:
        decode_image(data, RGB_SPEC, LIMIT)
    assert info.value.code == "invalid_image"
    assert found in info.value.message


def test_unsupported_image_format_is_named():
    data = encode(pattern((32, 32)), "ICO")
    with pytest.raises(DecodeError) as info:
        decode_image(data, RGB_SPEC, LIMIT)
    assert info.value.code == "invalid_image"
    assert "ICO images are not supported" in info.value.message


def test_empty_file_is_invalid():
    with pytest.raises(DecodeError) as info:
        decode_image(b"", RGB_SPEC, LIMIT)
    assert info.value.code == "invalid_image"
    assert "empty" in info.value.message


def test_describe_content_recognises_images_by_signature():
    assert describe_content(encode(pattern(), "PNG")) == "PNG"
    assert describe_content(encode(pattern(), "JPEG")) == "JPEG"
