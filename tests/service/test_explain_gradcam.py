"""The service's heatmaps against pytorch-grad-cam's GradCAM on the PyTorch model.

For simple_cnn (64 px, 8x8 maps) and resnet18 (128 px, 4x4 maps), several images and both
the top-1 and a requested class: the grid ``POST /explain`` answers, resized bilinearly to
the input size, correlates at >= 0.99 with GradCAM's map of the same class at the card's
feature layer. The service side never touches torch; the reference side is torch only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from model.cam import upsample
from model.checkpoint import load_checkpoint
from model.decoding import load_and_preprocess
from model.export import export_checkpoint
from service.app.factory import create_app
from service.plumbing.settings import Settings
from tests.helpers.app import wait_loaded
from tests.helpers.images import encode, pattern
from tests.helpers.models import make_checkpoint

pytestmark = pytest.mark.heavy

LABELS = ("a", "b", "c", "d")
SIZES = {"simple_cnn": 64, "resnet18": 128}
MIN_CORRELATION = 0.99


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("gradcam")
    checkpoints = {}
    for architecture, size in SIZES.items():
        checkpoints[architecture] = make_checkpoint(
            root / f"{architecture}.pt",
            architecture=architecture,
            labels=LABELS,
            resize_size=size,
            crop_size=size,
        )
        export_checkpoint(checkpoints[architecture], root / "models", architecture)
    with TestClient(create_app(Settings(models_dir=root / "models"))) as client:
        wait_loaded(client)
        yield client, checkpoints, root


def _gradcam(checkpoint: Path, image: Path, index: int, layer: str) -> np.ndarray:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.model.eval()
    x = torch.from_numpy(load_and_preprocess(str(image), ckpt.config.preprocessing))[None]
    with GradCAM(model=model, target_layers=[model.get_submodule(layer)]) as cam:
        return np.asarray(cam(input_tensor=x, targets=[ClassifierOutputTarget(index)])[0])


@pytest.mark.parametrize("architecture", sorted(SIZES))
def test_service_heatmaps_match_pytorch_grad_cam(served, architecture: str) -> None:
    client, checkpoints, root = served
    size = SIZES[architecture]
    card = client.get(f"/v1/models/{architecture}").json()["versions"][0]["card"]
    layer = card["class_activation_maps"]["feature_layer"]
    correlations = []
    for seed in range(3):
        image = root / f"{architecture}-{seed}.png"
        image.write_bytes(encode(pattern((size + 24, size + 8), seed=seed), "PNG"))
        top = client.post(
            f"/v1/models/{architecture}/explain",
            content=image.read_bytes(),
            headers={"Content-Type": "image/png"},
        ).json()
        second = top["predictions"][0]["top_k"][1]["label"]
        for label in (None, second):
            response = client.post(
                f"/v1/models/{architecture}/explain",
                params={"label": label} if label else {},
                content=image.read_bytes(),
                headers={"Content-Type": "image/png"},
            )
            assert response.status_code == 200, response.text
            (explanation,) = response.json()["explanations"]
            grid = np.asarray(explanation["grid"], dtype=np.float32)
            assert grid.std() > 0, "a degenerate map proves nothing"
            reference = _gradcam(checkpoints[architecture], image, explanation["index"], layer)
            ours = upsample(grid, (size, size))
            correlations.append(float(np.corrcoef(ours.ravel(), reference.ravel())[0, 1]))
    assert min(correlations) >= MIN_CORRELATION, correlations
