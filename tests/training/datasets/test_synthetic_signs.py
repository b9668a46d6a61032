from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.datasets.synthetic_signs import (
    CLASS_NAMES,
    MANIFEST,
    SignSetSpec,
    generate_sign_folder,
    image_rng,
    render_sign,
)


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    a = np.asarray(render_sign("stop", image_rng(0, "train", 6, 1)))
    b = np.asarray(render_sign("stop", image_rng(0, "train", 6, 1)))
    c = np.asarray(render_sign("stop", image_rng(1, "train", 6, 1)))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 5


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_every_class_renders_at_the_requested_size(name: str) -> None:
    image = render_sign(name, image_rng(0, "test", 0, 0), size=48)
    assert image.size == (48, 48) and image.mode == "RGB"
    assert np.asarray(image).std() > 10  # not a blank frame


def test_classes_are_alphabetical_like_an_image_folder() -> None:
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES)


def test_folder_layout_manifest_and_reuse(signs_dir: Path) -> None:
    spec = SignSetSpec(**json.loads((signs_dir / MANIFEST).read_text()))
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        for name in CLASS_NAMES:
            assert len(list((signs_dir / split / name).glob("*.png"))) == count
    marker = signs_dir / "train" / "stop" / "stop-00000.png"
    before = marker.stat().st_mtime_ns
    generate_sign_folder(signs_dir, spec)  # same spec: reused, nothing rewritten
    assert marker.stat().st_mtime_ns == before


def test_unknown_class_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="speed_limit_30"):
        render_sign("roundabout", image_rng(0, "train", 0, 0))
