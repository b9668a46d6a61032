"""Train/serve parity: an image file sent over HTTP gets the PyTorch checkpoint's probabilities.

The checkpoints (``model_repo``) use resize 36 -> crop 32 with per-channel mean/std, so
resizing, cropping and normalisation are all exercised, for a grayscale and an RGB model.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.service.conftest import encode, pattern

TOLERANCE = 1e-4


def torch_probabilities(checkpoint_path, image_path) -> np.ndarray:
    import torch

    from model.checkpoint import load_checkpoint
    from model.decoding import load_and_preprocess

    checkpoint = load_checkpoint(checkpoint_path)
    tensor = torch.from_numpy(load_and_preprocess(str(image_path), checkpoint.config.preprocessing))
    with torch.no_grad():
        logits = checkpoint.model(tensor[None])
    if checkpoint.config.task == "multilabel":
        return torch.sigmoid(logits)[0].numpy()
    return torch.softmax(logits, dim=1)[0].numpy()


def served_probabilities(http, name: str, data: bytes, labels: tuple[str, ...]) -> np.ndarray:
    response = http.post(
        f"/v1/models/{name}/predict", files={"image": ("x", data)}, params={"top_k": 1000}
    )
    assert response.status_code == 200, response.text
    scores = {s["label"]: s["probability"] for s in response.json()["predictions"][0]["top_k"]}
    return np.array([scores[label] for label in labels])


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
