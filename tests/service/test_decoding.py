"""The service's decoding adapter: model.decoding's errors become API errors, unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from model.decoding import load_and_preprocess
from service.inference.decode_upload import decode_into
from service.plumbing.errors import APIError
from tests.helpers.dicom import ct_bytes, ct_slice, dicom_bytes, multi_frame
from tests.helpers.images import GRAY_SPEC, RGB_SPEC, encode, pattern

LIMIT = 25_000_000


def test_decode_into_writes_the_training_tensor(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(ct_bytes())
    out = np.empty((3, 32, 32), np.float32)
    times = decode_into(path.read_bytes(), RGB_SPEC, LIMIT, out)
    assert times.decode_s > 0 and times.preprocess_s > 0
    np.testing.assert_array_equal(out, load_and_preprocess(path, RGB_SPEC))


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "invalid_image"),
        (b"%PDF-1.7", 400, "invalid_image"),
        (multi_frame(2), 422, "multiple_frames"),
    ],
    ids=["empty", "pdf", "two-frames"],
)
def test_decode_errors_become_api_errors(data, status, code):
    out = np.empty((1, 32, 32), np.float32)
    with pytest.raises(APIError) as info:
        decode_into(data, GRAY_SPEC, LIMIT, out)
    assert (info.value.status_code, info.value.code) == (status, code)


def _decoded(data: bytes, spec) -> np.ndarray:
    out = np.empty((1, 32, 32), np.float32)
    decode_into(data, spec, LIMIT, out)
    return out


CT_WINDOW = {"RescaleIntercept": -1024, "RescaleSlope": 1, "WindowCenter": 40, "WindowWidth": 400}


def test_the_specs_frame_is_decoded():
    """``frame: 1`` gets the second frame: the tensor of that frame alone, not the first's
    (the two frames differ: the second is another slice, mirrored; another picture, rotated)."""
    second = GRAY_SPEC.model_copy(update={"frame": 1})
    first_ct, second_ct = ct_slice(seed=0), np.ascontiguousarray(np.fliplr(ct_slice(seed=1)))
    two_slices = dicom_bytes(np.stack([first_ct, second_ct]), bits_stored=12, **CT_WINDOW)
    got = _decoded(two_slices, second)
    alone = [
        _decoded(dicom_bytes(f, bits_stored=12, **CT_WINDOW), GRAY_SPEC)
        for f in (first_ct, second_ct)
    ]
    np.testing.assert_array_equal(got, alone[1])
    assert np.abs(got - alone[0]).mean() > 0.1

    first_picture, second_picture = pattern(), pattern(seed=1).transpose(Image.Transpose.ROTATE_180)
    gif = encode(first_picture, "GIF", save_all=True, append_images=[second_picture])
    got = _decoded(gif, second)
    alone = [_decoded(encode(p, "GIF"), GRAY_SPEC) for p in (first_picture, second_picture)]
    np.testing.assert_array_equal(got, alone[1])
    assert np.abs(got - alone[0]).mean() > 0.1
