"""Train/serve parity: an image file sent over HTTP gets the PyTorch checkpoint's probabilities.

The checkpoints (``model_repo``) use resize 36 -> crop 32 with per-channel mean/std, so
resizing, cropping and normalisation are all exercised, for a grayscale and an RGB model.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.images import encode, pattern
from tests.helpers.predictions import TOLERANCE, served_probabilities, torch_probabilities

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", ["gray", "rgb"])
@pytest.mark.parametrize(
    ("fmt", "size"),
    [("JPEG", (97, 61)), ("PNG", (45, 80)), ("JPEG", (300, 200))],
    ids=["jpeg-97x61", "png-45x80", "jpeg-300x200-draft"],
)
def test_http_matches_pytorch(http, model_repo, tmp_path, name, fmt, size):
    from model.checkpoint import load_checkpoint

    exported = model_repo[name]
    labels = load_checkpoint(exported.checkpoint).config.labels
    data = encode(pattern(size, seed=size[0] + len(name)), fmt)
    path = tmp_path / f"image.{fmt.lower()}"
    path.write_bytes(data)
    expected = torch_probabilities(exported.checkpoint, path)
    got = served_probabilities(http, name, data, labels)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert expected.max() - expected.min() > 1e-3  # the model really discriminates


@pytest.mark.parametrize("name", ["gray", "rgb"])
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_http_matches_pytorch_on_16_bit_grayscale(http, model_repo, tmp_path, name, fmt):
    from PIL import Image

    from model.checkpoint import load_checkpoint

    exported = model_repo[name]
    labels = load_checkpoint(exported.checkpoint).config.labels
    levels = np.asarray(pattern((70, 52), "L", seed=9), np.uint16) * 256 + 100  # low byte used
    data = encode(Image.fromarray(levels), fmt)
    path = tmp_path / f"image.{fmt.lower()}"
    path.write_bytes(data)
    expected = torch_probabilities(exported.checkpoint, path)
    got = served_probabilities(http, name, data, labels)
    assert np.abs(got - expected).max() <= TOLERANCE
