"""Tiny datasets in the real on-disk formats, and a tiny training config.

Images carry a class-dependent brightness and colour so that even a one-epoch run on a few
dozen images has something to learn.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from training.config import TrainConfig


def class_image(rng: np.random.Generator, label: int, size: int, channels: int) -> np.ndarray:
    base = 40 + 60 * label
    pixels = rng.normal(base, 25, (size, size, channels)).clip(0, 255).astype(np.uint8)
    return pixels[:, :, 0] if channels == 1 else pixels


def write_medmnist(
    root: Path,
    flag: str,
    *,
    size: int = 28,
    channels: int = 1,
    classes: int = 2,
    multilabel: int = 0,
    counts: tuple[int, int, int] = (24, 8, 12),
    seed: int = 0,
) -> Path:
    """``root/FLAG[_SIZE].npz`` with the MedMNIST keys and shapes."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), counts, strict=True):
        labels = np.arange(count) % classes
        arrays[f"{split}_images"] = np.stack(
            [class_image(rng, int(label), size, channels) for label in labels]
        )
        if multilabel:
            findings = rng.integers(0, 2, (count, multilabel)).astype(np.uint8)
            findings[:2] = [[0] * multilabel, [1] * multilabel]  # every label both ways
            arrays[f"{split}_labels"] = findings
        else:
            arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    name = f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"
    path = root / name
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


GT_HEADER = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]


def write_gtsrb(
    root: Path, *, classes: tuple[int, ...] = (0, 14, 17), tracks: int = 3, frames: int = 3
) -> Path:
    """torchvision's layout: ``root/gtsrb/GTSRB/{Training,Final_Test/Images}`` + CSVs."""
    rng = np.random.default_rng(1)
    base = root / "gtsrb"
    for rank, class_id in enumerate(classes):
        folder = base / "GTSRB" / "Training" / f"{class_id:05d}"
        folder.mkdir(parents=True)
        rows = []
        for track in range(tracks):
            for frame in range(frames):
                name = f"{track:05d}_{frame:05d}.ppm"
                width, height = 30 + frame, 32
                Image.fromarray(class_image(rng, rank, 32, 3)[:, :width]).save(folder / name)
                rows.append([name, width, height, 2, 3, width - 3, height - 4, class_id])
        _write_csv(folder / f"GT-{class_id:05d}.csv", rows)
    images = base / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True)
    rows = []
    for index in range(3 * len(classes)):
        rank = index % len(classes)
        name = f"{index:05d}.ppm"
        Image.fromarray(class_image(rng, rank, 32, 3)).save(images / name)
        rows.append([name, 32, 32, 1, 1, 30, 30, classes[rank]])
    _write_csv(base / "GT-final_test.csv", rows)
    return root


def _write_csv(path: Path, rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(GT_HEADER)
        writer.writerows(rows)


def write_image_folder(
    root: Path,
    classes: tuple[str, ...] = ("cat", "dog", "fox"),
    per_class: int = 10,
    suffix: str = ".jpg",
    size: int = 40,
) -> Path:
    """A flat ``root/<class>/*`` folder (no split sub-folders)."""
    rng = np.random.default_rng(2)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = class_image(rng, label, size, 3)[:, : size - 4]  # not square
            Image.fromarray(pixels).save(root / name / f"{index:03d}{suffix}")
    return root


def write_dicom_folder(root: Path, per_class: int = 8, size: int = 40) -> Path:
    """``root/{normal,nodule}/IM0000...``: CT slices without a file suffix (as PACS exports
    them); a nodule is a bright disc in the soft tissue."""
    from tests.helpers.dicom import ct_slice, dicom_bytes

    for label, name in enumerate(("normal", "nodule")):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            stored = ct_slice(size, seed=10 * label + index)
            if label:
                y, x = np.mgrid[0:size, 0:size]
                stored[np.hypot(x - size * 0.4, y - size * 0.5) < size / 8] = 1024 + 300
            data = dicom_bytes(
                stored, bits_stored=12, RescaleIntercept=-1024, RescaleSlope=1,
                WindowCenter=40, WindowWidth=400,
            )  # fmt: skip
            (root / name / f"IM{index:04d}").write_bytes(data)
    return root


# The command-line flags of a tiny, quick training run (the network and budget of tiny_config).
TINY = ["--arch-option", "width=4", "--arch-option", "depth=1", "--img-size", "16"]
TINY += ["--batch-size", "8", "--workers", "0", "--device", "cpu", "--no-progress"]


def tiny_config(tmp_path: Path, **overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "arch": "simple_cnn",
        "arch_options": {"width": 4, "depth": 1, "dropout": 0.0},
        "img_size": 16,
        "epochs": 1,
        "batch_size": 8,
        "workers": 0,
        "device": "cpu",
        "progress": False,
        "patience": 0,
        "out": str(tmp_path / "runs"),
    }
    values.update(overrides)
    return TrainConfig(**values).validate()  # type: ignore[arg-type]
