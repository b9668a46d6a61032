from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.preprocess import preprocess_image
from tests.helpers.datasets import write_medmnist
from training.datasets import DatasetError, load_dataset
from training.datasets.medmnist import FLAGS, find_npz, load_medmnist


def test_binary_grayscale_file(data_dir: Path) -> None:
    bundle = load_medmnist(data_dir / "medmnist", "pneumoniamnist")
    assert bundle.task == "binary"
    assert bundle.labels == ("normal", "pneumonia")
    assert bundle.color_mode == "L" and bundle.mean == (0.5,)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (24, 8, 12)
    assert bundle.train.targets.dtype == np.int64 and bundle.train.targets.shape == (24,)


def test_multilabel_chestmnist(data_dir: Path) -> None:
    bundle = load_medmnist(data_dir / "medmnist", "chestmnist")
    assert bundle.task == "multilabel" and len(bundle.labels) == 14
    assert bundle.train.targets.shape == (24, 14) and bundle.train.targets.dtype == np.float32


def test_size_suffix_is_picked_by_image_size(data_dir: Path) -> None:
    assert find_npz(data_dir / "medmnist", "dermamnist", 64).name == "dermamnist_64.npz"
    # No 28 px file: the nearest larger one serves.
    assert find_npz(data_dir / "medmnist", "dermamnist", 28).name == "dermamnist_64.npz"
    bundle = load_dataset("medmnist:dermamnist", data_dir / "medmnist", img_size=64)
    assert bundle.color_mode == "RGB" and len(bundle.labels) == 7
    assert bundle.train.images.shape[1:] == (64, 64, 3)


def test_every_flag_has_unique_labels_and_a_task() -> None:
    for info in FLAGS.values():
        assert len(set(info.labels)) == len(info.labels)
        assert info.task in ("binary", "multiclass", "multilabel")
    assert FLAGS["retinamnist"].task == "multiclass"  # ordinal, scored as classes
    assert FLAGS["breastmnist"].task == "binary"


def test_eval_tensor_is_model_preprocess_output(data_dir: Path) -> None:
    bundle = load_medmnist(data_dir / "medmnist", "pneumoniamnist")
    spec = bundle.preprocessing(32, 36)
    expected = preprocess_image(Image.fromarray(bundle.test.images[3]), spec)
    np.testing.assert_array_equal(bundle.test.preprocess(3, spec), expected)
    assert expected.shape == (1, 32, 32)


def test_missing_key_and_missing_file_are_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "breastmnist.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="train_labels"):
        load_medmnist(tmp_path, "breastmnist")
    with pytest.raises(DatasetError, match=r"no octmnist\.npz"):
        load_medmnist(tmp_path, "octmnist")


def test_out_of_range_labels_are_refused(tmp_path: Path) -> None:
    path = write_medmnist(tmp_path, "breastmnist", classes=3)
    with pytest.raises(DatasetError, match=r"outside 0\.\.1"):
        load_medmnist(path.parent, "breastmnist")


def test_unknown_flag_lists_the_valid_ones() -> None:
    with pytest.raises(DatasetError, match="pathmnist"):
        load_dataset("medmnist:nosuchmnist", "/nonexistent")
