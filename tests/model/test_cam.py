"""model/cam.py: the NumPy heatmaps the service and the CLI draw."""

import numpy as np
import pytest
from PIL import Image

from model.cam import (
    NotExplainableError,
    check_explainable,
    colorize,
    heatmap,
    overlay,
    select_class,
    upsample,
)
from model.card import ClassActivationMaps, ModelCard
from tests.helpers.images import RGB_SPEC


def _card(**overrides: object) -> ModelCard:
    fields: dict[str, object] = {
        "name": "m",
        "version": 2,
        "task": "multiclass",
        "labels": ("cat", "dog", "bird"),
        "preprocessing": RGB_SPEC,
        "architecture": "mobilenet_v3_small",
        "activation": "relu",
        "dataset": "test",
    }
    return ModelCard.model_validate({**fields, **overrides})


def test_heatmap_is_the_relu_of_one_class_scaled_to_unit_range() -> None:
    maps = np.zeros((2, 2, 3), np.float32)
    maps[1] = [[-4.0, 0.0, 2.0], [4.0, 6.0, -1.0]]
    heat = heatmap(maps, 1)
    np.testing.assert_allclose(heat, [[0, 0, 1 / 3], [2 / 3, 1, 0]], atol=1e-6)
    assert heat.dtype == np.float32
    # A class with no positive evidence anywhere has an all-zero heatmap, not NaN.
    np.testing.assert_array_equal(heatmap(-np.ones((1, 2, 2), np.float32), 0), 0.0)


def test_select_class_defaults_to_top1_and_names_the_valid_labels() -> None:
    card = _card()
    probabilities = np.array([0.1, 0.7, 0.2])
    assert select_class(card, probabilities, None) == 1
    assert select_class(card, probabilities, "bird") == 2
    with pytest.raises(ValueError, match="unknown label 'fish'; model m has: cat, dog, bird"):
        select_class(card, probabilities, "fish")


def test_a_card_without_maps_says_why_it_cannot_be_explained() -> None:
    with pytest.raises(NotExplainableError, match=r"m version 2 \(mobilenet_v3_small\)"):
        check_explainable(_card())
    maps = ClassActivationMaps(feature_layer="features", grid=(4, 4))
    check_explainable(_card(architecture="simple_cnn", class_activation_maps=maps))


def test_colours_run_from_blue_to_red_and_upsampling_keeps_the_peak() -> None:
    np.testing.assert_array_equal(colorize(np.array([0.0, 1.0])), [[128, 0, 0][::-1], [128, 0, 0]])
    heat = np.zeros((4, 4), np.float32)
    heat[1, 2] = 1.0
    big = upsample(heat, (32, 32))
    assert big.shape == (32, 32)
    y, x = np.unravel_index(np.argmax(big), big.shape)
    assert (y // 8, x // 8) == (1, 2)


def test_overlay_is_enlarged_and_blends_by_opacity() -> None:
    view = Image.new("L", (32, 32), 255)
    heat = np.zeros((4, 4), np.float32)
    assert overlay(view, heat, 0.0).size == (256, 256)
    assert overlay(view, heat, 0.0).getpixel((10, 10)) == (255, 255, 255)
    assert overlay(view, heat, 1.0).getpixel((10, 10)) == (0, 0, 128)  # jet's low end
    with pytest.raises(ValueError, match="opacity"):
        overlay(view, heat, 1.5)
