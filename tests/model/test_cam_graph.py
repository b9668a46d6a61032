"""The class_maps output export adds: what it means and when export refuses it."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model.architectures import CamLayers
from model.cam_graph import CamHeadError, WithClassMaps, check_global_pool_head
from model.checkpoint import load_checkpoint
from model.export import export_checkpoint, output_head
from tests.helpers.models import make_checkpoint


def test_each_map_averages_to_its_logit_in_the_exported_graph(tmp_path: Path) -> None:
    ckpt_path = make_checkpoint(tmp_path / "m.pt", resize_size=32, crop_size=32)
    result = export_checkpoint(ckpt_path, tmp_path / "models", "m")
    assert result.card.class_activation_maps is not None
    assert result.card.class_activation_maps.grid == (8, 8)  # depth 2: two 2x2 pools
    assert result.parity.class_maps_max_rel_diff is not None
    assert result.parity.class_maps_max_rel_diff < 1e-4

    model = load_checkpoint(ckpt_path).model.eval()
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    probabilities, maps = session.run(["probabilities", "class_maps"], {"image": x})
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    bias = model.classifier.bias.detach().numpy()
    np.testing.assert_allclose(maps.mean(axis=(2, 3)) + bias, logits, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(probabilities, torch.softmax(torch.from_numpy(logits), 1), atol=1e-5)


def test_layers_that_are_not_a_global_pool_head_are_refused(tmp_path: Path) -> None:
    model = load_checkpoint(make_checkpoint(tmp_path / "m.pt")).model.eval()
    example = torch.randn(2, 3, 32, 32)
    # Before the last max-pool: the right channels, but averaging them is not the logits.
    unpooled = WithClassMaps(
        model, output_head("multiclass"), CamLayers("features.4", "classifier")
    )
    with pytest.raises(CamHeadError, match=r"does not give the logits .* not global average"):
        check_global_pool_head(unpooled, example)
    early = WithClassMaps(model, output_head("multiclass"), CamLayers("features.1", "classifier"))
    with pytest.raises(CamHeadError, match="outputs 8 channels; classifier takes 16"):
        check_global_pool_head(early, example)
    with pytest.raises(CamHeadError, match=r"not nn\.Linear"):
        WithClassMaps(model, output_head("multiclass"), CamLayers("features", "features.0"))


def test_the_checkpoint_model_keeps_no_hook(tmp_path: Path) -> None:
    model = load_checkpoint(make_checkpoint(tmp_path / "m.pt")).model.eval()
    wrapper = WithClassMaps(model, output_head("multiclass"), CamLayers("features", "classifier"))
    check_global_pool_head(wrapper, torch.randn(2, 3, 32, 32))
    assert not model.features._forward_hooks
