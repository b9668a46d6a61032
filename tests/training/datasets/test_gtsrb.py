from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.decoding import load_and_preprocess
from model.preprocess import preprocess_image
from training.datasets import DatasetError, load_dataset
from training.datasets.gtsrb import SIGN_NAMES, load_gtsrb


def test_layout_and_labels(data_dir: Path) -> None:
    bundle = load_gtsrb(data_dir / "gtsrb_root")
    assert len(bundle.labels) == 43 and bundle.labels[14] == "Stop"
    assert len(bundle.train) + len(bundle.val) == 27
    assert len(bundle.test) == 9
    assert set(bundle.test.targets) == {0, 14, 17}
    assert not bundle.hflip


def test_validation_takes_whole_tracks(data_dir: Path) -> None:
    bundle = load_gtsrb(data_dir / "gtsrb_root")

    def tracks(split) -> set[str]:
        return {f"{p.parent.name}/{p.name.split('_')[0]}" for p in split.images}

    assert tracks(bundle.train).isdisjoint(tracks(bundle.val))
    assert set(bundle.val.targets) == {0, 14, 17}  # one track of each class


def test_roi_crop_uses_inclusive_corners(data_dir: Path) -> None:
    bundle = load_gtsrb(data_dir / "gtsrb_root", roi_crop=True)
    path = bundle.train.images[0]
    with Image.open(path) as image:
        width, height = image.size
    spec = bundle.preprocessing(16)
    cropped = bundle.train.load(0, spec)
    # Written with ROI (2, 3, width - 3, height - 4), inclusive.
    assert cropped.size == (width - 3 - 2 + 1, height - 4 - 3 + 1)
    with Image.open(path) as image:
        expected = preprocess_image(image.crop((2, 3, width - 2, height - 3)), spec)
    np.testing.assert_array_equal(bundle.train.preprocess(0, spec), expected)


def test_eval_tensor_without_roi_is_the_service_path(data_dir: Path) -> None:
    bundle = load_dataset("gtsrb", data_dir / "gtsrb_root")
    spec = bundle.preprocessing(24, 28)
    expected = load_and_preprocess(str(bundle.test.images[2]), spec)
    np.testing.assert_array_equal(bundle.test.preprocess(2, spec), expected)


def test_missing_layout_is_explained(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="GTSRB/Training"):
        load_gtsrb(tmp_path)


def test_sign_names_are_unique() -> None:
    assert len(set(SIGN_NAMES)) == 43
