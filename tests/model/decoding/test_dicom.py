"""DICOM decoding: LUTs, windows, photometric interpretations, frames and every refusal,
on files written with pydicom (uncompressed and compressed by the installed plugins)."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import convert_color_space
from pydicom.sequence import Sequence

from model.card import DicomPolicy, Window
from model.decoding import DecodeError, decode_image
from tests.helpers.dicom import (
    PHI_STRINGS,
    SYNTAXES,
    colour_picture,
    ct_bytes,
    ct_slice,
    dicom_bytes,
    huge_dimensions,
    multi_frame,
    with_32_bits_stored,
    with_bad_rle_segment_offset,
    with_bad_vr,
    with_transfer_syntax,
    without_pixel_data,
)
from tests.helpers.images import GRAY_SPEC, RGB_SPEC

LIMIT = 25_000_000


def display(data: bytes, spec=GRAY_SPEC, frame: int | None = None) -> np.ndarray:
    if frame is not None:
        spec = spec.model_copy(update={"frame": frame})
    image = decode_image(data, spec, LIMIT)
    try:
        return np.asarray(image, dtype=np.float64)
    finally:
        image.close()


def linear_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR), onto 0..255, written out independently."""
    return np.clip(((hu - (center - 0.5)) / (width - 1) + 0.5) * 255.0, 0.0, 255.0)


def refusal(data: bytes, spec=GRAY_SPEC, frame: int | None = None) -> DecodeError:
    if frame is not None:
        spec = spec.model_copy(update={"frame": frame})
    with pytest.raises(DecodeError) as info:
        decode_image(data, spec, LIMIT)
    error = info.value
    for value in PHI_STRINGS:  # never a patient identifier in an error
        assert value not in error.message
        assert value not in repr(error.detail)
    return error


@pytest.mark.parametrize("syntax", list(SYNTAXES), ids=list(SYNTAXES))
def test_ct_slice_is_rescaled_and_windowed_from_the_file(syntax):
    got = display(ct_bytes(syntax=SYNTAXES[syntax]))
    hu = ct_slice().astype(np.float64) - 1024.0
    np.testing.assert_allclose(got, linear_window(hu, 40, 400), atol=1e-3)


def test_rescale_slope_and_intercept_are_applied():
    stored = ct_slice()
    data = dicom_bytes(
        stored,
        bits_stored=12,
        RescaleSlope=2,
        RescaleIntercept=-2000,
        WindowCenter=0,
        WindowWidth=1000,
    )
    np.testing.assert_allclose(
        display(data), linear_window(stored * 2.0 - 2000.0, 0, 1000), atol=1e-3
    )


def test_the_cards_fixed_window_wins_over_the_files():
    bone = GRAY_SPEC.model_copy(
        update={"dicom": DicomPolicy(window=Window(center=500, width=2000))}
    )
    got = display(ct_bytes(), bone)
    hu = ct_slice().astype(np.float64) - 1024.0
    np.testing.assert_allclose(got, linear_window(hu, 500, 2000), atol=1e-3)
    assert not np.allclose(got, linear_window(hu, 40, 400), atol=1.0)


def test_a_voi_lut_sequence_is_preferred_to_the_window():
    stored = (np.arange(64 * 64).reshape(64, 64) % 256).astype(np.uint16)
    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 8]
    table = (255 - np.arange(256)).astype(np.uint16)  # an inverting LUT, 8-bit output
    lut.LUTData = table.astype("<u2").tobytes()
    data = dicom_bytes(
        stored, bits_stored=8, VOILUTSequence=Sequence([lut]), WindowCenter=128, WindowWidth=10
    )
    np.testing.assert_allclose(display(data), 255.0 - stored, atol=1e-3)


def test_without_any_window_the_images_own_range_is_used():
    stored = (np.arange(64 * 64).reshape(64, 64) % 1000 + 500).astype(np.uint16)
    got = display(dicom_bytes(stored, bits_stored=12))
    np.testing.assert_allclose(got, (stored - 500.0) * 255.0 / 999.0, atol=1e-3)


def test_monochrome1_is_inverted():
    stored = ct_slice()
    args = {"bits_stored": 12, "RescaleIntercept": -1024, "WindowCenter": 40, "WindowWidth": 400}
    normal = display(dicom_bytes(stored, **args))
    inverted = display(dicom_bytes(stored, photometric="MONOCHROME1", **args))
    np.testing.assert_allclose(inverted, 255.0 - normal, atol=1e-3)


def test_pixel_padding_is_black_and_left_out_of_the_range():
    stored = (np.arange(64 * 64).reshape(64, 64) % 1000 + 500).astype(np.uint16)
    stored[:8] = 4095  # padding outside the scanned field of view
    got = display(dicom_bytes(stored, bits_stored=12, PixelPaddingValue=4095))
    assert (got[:8] == 0).all()
    real = stored[8:].astype(np.float64)
    np.testing.assert_allclose(
        got[8:], (real - real.min()) * 255.0 / (real.max() - real.min()), atol=1e-3
    )


def test_pixel_padding_range_limit_masks_a_range():
    stored = (np.arange(64 * 64).reshape(64, 64) % 1000 + 500).astype(np.uint16)
    stored[:4], stored[4:8] = 0, 3
    got = display(
        dicom_bytes(stored, bits_stored=12, PixelPaddingValue=0, PixelPaddingRangeLimit=3)
    )
    assert (got[:8] == 0).all() and got[8:].max() == 255.0


@pytest.mark.parametrize("syntax", ["uncompressed", "rle"])
def test_rgb_is_decoded_as_rgb(syntax):
    rgb = colour_picture()
    got = display(dicom_bytes(rgb, photometric="RGB", syntax=SYNTAXES[syntax]), RGB_SPEC)
    np.testing.assert_array_equal(got, rgb)


def test_ybr_full_is_converted_to_rgb():
    rgb = colour_picture()
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    got = display(dicom_bytes(ybr, photometric="YBR_FULL"), RGB_SPEC)
    assert np.abs(got - rgb).max() <= 2  # the colour transform rounds


def test_palette_color_is_looked_up():
    indices = (np.arange(48 * 64).reshape(48, 64) % 4).astype(np.uint8)
    reds, greens, blues = [0, 65535, 0, 65535], [0, 0, 65535, 65535], [65535, 0, 0, 65535]
    data = dicom_bytes(
        indices,
        photometric="PALETTE COLOR",
        RedPaletteColorLookupTableDescriptor=[4, 0, 16],
        GreenPaletteColorLookupTableDescriptor=[4, 0, 16],
        BluePaletteColorLookupTableDescriptor=[4, 0, 16],
        RedPaletteColorLookupTableData=np.array(reds, "<u2").tobytes(),
        GreenPaletteColorLookupTableData=np.array(greens, "<u2").tobytes(),
        BluePaletteColorLookupTableData=np.array(blues, "<u2").tobytes(),
    )
    got = display(data, RGB_SPEC)
    expected = np.stack([reds, greens, blues], axis=-1)[indices] / 257.0
    np.testing.assert_array_equal(got, expected)


def test_multi_frame_is_refused_naming_the_frame_count_unless_a_frame_is_chosen():
    data = multi_frame(3)
    frames = np.stack([ct_slice(seed=i) for i in range(3)])
    error = refusal(data)
    assert error.code == "multiple_frames"
    assert "the DICOM image has 3 frames" in error.message
    hu = frames.astype(np.float64) - 1024.0
    np.testing.assert_allclose(display(data, frame=1), linear_window(hu[1], 40, 400), atol=1e-3)
    third = GRAY_SPEC.model_copy(update={"frame": 2})
    np.testing.assert_allclose(display(data, third), linear_window(hu[2], 40, 400), atol=1e-3)
    assert "frame 3 was asked for" in refusal(data, frame=3).message


# --------------------------------------------------------------------------- refusals


def test_no_pixel_data_is_refused():
    error = refusal(without_pixel_data(ct_bytes()))
    assert error.code == "invalid_image"
    assert "no Pixel Data (7FE0,0010)" in error.message


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_pixel_data_is_refused(cut):
    data = ct_bytes()
    error = refusal(data[: int(len(data) * cut)])
    assert error.code == "invalid_image"
    assert "truncated or corrupt" in error.message


def test_truncated_header_is_refused():
    error = refusal(ct_bytes()[:200])
    assert error.code == "invalid_image"


def test_unsupported_transfer_syntax_is_refused_with_415():
    # MPEG2 Main Profile: a standard transfer syntax no installed plugin decodes.
    data = with_transfer_syntax(ct_bytes(), "1.2.840.10008.1.2.4.100")
    error = refusal(data)
    assert error.code == "unsupported_media_type"
    assert "MPEG2" in error.message and "supported: " in error.message
    assert "RLE Lossless" in error.message


def test_a_codec_panic_is_refused_like_any_corrupt_data():
    # A Rust codec's panic is a BaseException, which a plain `except Exception` would miss.
    error = refusal(with_bad_rle_segment_offset(ct_bytes(size=40, syntax=SYNTAXES["rle"])))
    assert error.code == "invalid_image"
    assert "(RLE Lossless) is truncated or corrupt" in error.message


def test_more_than_16_bits_stored_is_refused():
    error = refusal(with_32_bits_stored())
    assert error.code == "invalid_image"
    assert "stores 32 bits per sample; 1 to 16 are supported" in error.message


def test_huge_rows_and_columns_are_refused_before_decoding():
    error = refusal(huge_dimensions())
    assert error.code == "image_too_large"
    assert "60000x60000 = 3600000000 pixels" in error.message


def test_a_malformed_vr_is_refused_naming_the_tag():
    error = refusal(with_bad_vr(ct_bytes()))
    assert error.code == "invalid_image"
    assert "malformed at tag (0010,0010)" in error.message


def test_unsupported_photometric_interpretation_is_named_only_when_standard():
    rgb = colour_picture()
    hsv = bytearray(dicom_bytes(rgb, photometric="RGB"))
    at = hsv.index(b"RGB ")
    assert "HSV" in refusal(bytes(hsv[:at] + b"HSV " + hsv[at + 4 :]), RGB_SPEC).message
    odd = refusal(bytes(hsv[:at] + b"JOE " + hsv[at + 4 :]), RGB_SPEC).message
    assert "an unrecognised value" in odd and "JOE" not in odd


def test_an_unknown_transfer_syntax_uid_is_not_echoed():
    error = refusal(with_transfer_syntax(ct_bytes(), "1.2.3.4.5.6.7"))
    assert error.code == "unsupported_media_type"
    assert "an unknown transfer syntax" in error.message and "1.2.3.4" not in error.message
