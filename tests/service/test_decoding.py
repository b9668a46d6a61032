"""The service's decoding adapter: model.decoding's errors become API errors, unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from model.decoding import load_and_preprocess
from service.inference.decode_upload import decode_into
from service.plumbing.errors import APIError
from tests.helpers.dicom import ct_bytes, multi_frame
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


def test_the_specs_frame_is_decoded():
    out = np.empty((1, 32, 32), np.float32)
    second = GRAY_SPEC.model_copy(update={"frame": 1})
    decode_into(multi_frame(2), second, LIMIT, out)
    gif = encode(pattern(), "GIF", save_all=True, append_images=[pattern(seed=1)])
    decode_into(gif, second, LIMIT, out)
