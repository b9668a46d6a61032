from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.decoding import load_and_preprocess
from tests.helpers.datasets import write_image_folder
from training.datasets import DatasetError, load_dataset
from training.datasets.base import seeded_split
from training.datasets.imagefolder import load_image_folder


def test_flat_folder_split_is_seeded_and_stratified(data_dir: Path) -> None:
    first = load_image_folder(data_dir / "folder", seed=5)
    again = load_image_folder(data_dir / "folder", seed=5)
    other = load_image_folder(data_dir / "folder", seed=6)
    assert first.labels == ("cat", "dog", "fox") and first.task == "multiclass"
    assert list(first.test.images) == list(again.test.images)
    assert list(first.test.images) != list(other.test.images)
    for split in (first.train, first.val, first.test):
        assert set(split.targets) == {0, 1, 2}
    everything = [*first.train.images, *first.val.images, *first.test.images]
    assert len(everything) == len(set(everything)) == 30


def test_split_subfolders_are_used(signs_dir: Path) -> None:
    bundle = load_image_folder(signs_dir)
    assert len(bundle.labels) == 8
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (32, 16, 16)
    assert all("/test/" in str(p) for p in bundle.test.images)


def test_two_classes_make_a_binary_task(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "f", classes=("no", "yes"), per_class=5, suffix=".png")
    bundle = load_dataset("imagefolder:f", tmp_path)
    assert bundle.task == "binary" and bundle.color_mode == "RGB"


def test_eval_tensor_goes_through_the_jpeg_draft_path(data_dir: Path) -> None:
    bundle = load_image_folder(data_dir / "folder")
    spec = bundle.preprocessing(16, 18)
    expected = load_and_preprocess(str(bundle.test.images[0]), spec)
    np.testing.assert_array_equal(bundle.test.preprocess(0, spec), expected)


def test_seeded_split_keeps_small_classes_in_every_split() -> None:
    targets = np.array([0] * 3 + [1] * 20)
    train, val, test = seeded_split(targets, (0.1, 0.1), seed=0)
    assert set(targets[val]) == {0, 1} and set(targets[test]) == {0, 1}
    assert len(np.intersect1d(train, val)) == 0


def test_one_class_is_refused(tmp_path: Path) -> None:
    write_image_folder(tmp_path, classes=("only",), per_class=4)
    with pytest.raises(DatasetError, match="at least two class folders"):
        load_image_folder(tmp_path)
