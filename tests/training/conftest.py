"""Fixtures of the training tests: the tiny datasets (``tests.helpers.datasets``), written
once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.datasets import (
    write_dicom_folder,
    write_gtsrb,
    write_image_folder,
    write_medmnist,
)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with every tiny dataset, written once per session."""
    root = tmp_path_factory.mktemp("datasets")
    write_medmnist(root / "medmnist", "pneumoniamnist")
    write_medmnist(
        root / "medmnist", "dermamnist", size=64, channels=3, classes=7, counts=(28, 14, 14)
    )
    write_medmnist(root / "medmnist", "chestmnist", multilabel=14, classes=2)
    write_gtsrb(root / "gtsrb_root")
    write_image_folder(root / "folder")
    write_dicom_folder(root / "ct")
    return root


@pytest.fixture(scope="session")
def signs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.datasets.synthetic_signs import SignSetSpec, generate_sign_folder

    root = tmp_path_factory.mktemp("signs")
    spec = SignSetSpec(seed=3, size=32, train_per_class=4, val_per_class=2, test_per_class=2)
    return generate_sign_folder(root, spec)
