from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.data import PreprocessedDataset, TrainPreset, balanced_sampler
from training.datasets import DatasetError
from training.datasets.imagefolder import load_image_folder
from training.datasets.medmnist import load_medmnist


def test_torchvision_transforms_v2_is_importable() -> None:
    import torchvision
    from torchvision.transforms import v2

    assert torchvision.__version__ and hasattr(v2, "RandomResizedCrop")


@pytest.mark.parametrize("augment", ["none", "light", "standard"])
def test_train_preset_normalises_with_the_card_mean_std(data_dir: Path, augment: str) -> None:
    bundle = load_image_folder(data_dir / "folder")
    spec = bundle.preprocessing(24, 28)
    transform = TrainPreset(spec, augment, hflip=True).build()  # type: ignore[arg-type]
    tensor = transform(bundle.train.load(0, spec))
    assert tensor.shape == (3, 24, 24) and tensor.dtype == torch.float32
    # A black image must map to -mean/std: the same normalisation as model.preprocess.
    black = transform(bundle.train.load(0, spec).point(lambda _: 0))
    expected = -np.array(spec.mean) / np.array(spec.std)
    np.testing.assert_allclose(black.mean(dim=(1, 2)).numpy(), expected, rtol=1e-5)


def test_eval_dataset_holds_model_preprocess_tensors(data_dir: Path) -> None:
    bundle = load_medmnist(data_dir / "medmnist", "dermamnist")
    spec = bundle.preprocessing(32, 40)
    dataset = PreprocessedDataset(bundle.val, spec, bundle.task)
    assert dataset.cache is not None
    for index in (0, 5):
        image, target = dataset[index]
        np.testing.assert_array_equal(image.numpy(), bundle.val.preprocess(index, spec))
        assert int(target) == int(bundle.val.targets[index])


def test_weighted_sampler_needs_single_labels(data_dir: Path) -> None:
    chest = load_medmnist(data_dir / "medmnist", "chestmnist")
    with pytest.raises(DatasetError, match="--balance loss"):
        balanced_sampler(chest.train, 14, torch.Generator())
