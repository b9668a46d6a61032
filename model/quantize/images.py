"""Calibration and holdout images for reduced-precision exports, preprocessed exactly as
the service preprocesses uploads (``model.preprocess``).

The caller hands them in: from an image folder or ``.npz`` here, or from a training run's own
dataset (``training.calibration``), so this package never reaches up into ``training``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.card import Preprocessing
from model.decoding import load_and_preprocess
from model.export import ExportError
from model.preprocess import preprocess_image

CALIBRATION_IMAGES = 300
HOLDOUT_IMAGES = 200
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class QuantizationError(ExportError):
    """The reduced-precision model is not faithful enough to fp32, or cannot be built."""


@dataclass(frozen=True)
class ImageSet:
    calibration: np.ndarray  # (N, C, H, W) float32, preprocessed
    holdout: np.ndarray  # may be empty: agreement is then measured on the calibration images
    source: str
    holdout_targets: np.ndarray | None = None  # class indices, where the source names them


def load_image_set(
    source: str | Path,
    spec: Preprocessing,
    labels: tuple[str, ...] = (),
    *,
    calibration: int = CALIBRATION_IMAGES,
    holdout: int = HOLDOUT_IMAGES,
    seed: int = 0,
) -> ImageSet:
    """Calibration and holdout images, preprocessed as the service preprocesses uploads.

    ``source`` is a MedMNIST-style ``.npz`` (``train_images`` and ``test_images`` /
    ``val_images``), a folder with ``train/`` and ``test/`` or ``val/`` subfolders, or any
    folder of images (searched recursively and split at random). Holdout targets are kept
    where the source names classes that match ``labels``, so accuracy can be compared too.
    (A training run folder is resolved by its caller: ``training.calibration``.)
    """
    source = Path(source)
    if source.is_file() and source.suffix == ".npz":
        return _from_npz(source, spec, calibration, holdout, seed)
    if not source.is_dir():
        raise QuantizationError(f"calibration source {source} is neither a folder nor an .npz")
    train_dir = source / "train"
    held_dir = next((source / n for n in ("test", "val") if (source / n).is_dir()), None)
    if train_dir.is_dir() and held_dir is not None:
        calib_files = _sample(_image_files(train_dir), calibration, seed)
        held_files = _sample(_image_files(held_dir), holdout, seed)
    else:
        files = _sample(_image_files(source), calibration + holdout, seed)
        # Too few to split: agreement is then measured on the calibration images.
        held_count = min(holdout, len(files) // 3) if len(files) >= 60 else 0
        calib_files, held_files = files[held_count:][:calibration], files[:held_count]
    if not calib_files:
        raise QuantizationError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}")
    index = {label: i for i, label in enumerate(labels)}
    known = all(p.parent.name in index for p in held_files)
    targets = np.array([index[p.parent.name] for p in held_files]) if known else None
    return ImageSet(
        stack_images([load_and_preprocess(str(p), spec) for p in calib_files], spec),
        stack_images([load_and_preprocess(str(p), spec) for p in held_files], spec),
        str(source),
        targets if held_files else None,
    )


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _sample(files: list[Path], count: int, seed: int) -> list[Path]:
    files = list(files)
    random.Random(seed).shuffle(files)
    return files[:count]


def _from_npz(
    path: Path, spec: Preprocessing, calibration: int, holdout: int, seed: int
) -> ImageSet:
    from PIL import Image

    with np.load(path) as data:
        if "train_images" not in data:
            raise QuantizationError(f"{path} has no train_images array ({', '.join(data.files)})")
        split = next((k for k in ("test", "val") if f"{k}_images" in data), None)
        train = data["train_images"]
        held = data[f"{split}_images"] if split else train[:0]
        labels = data.get(f"{split}_labels") if split else None
    rng = np.random.default_rng(seed)
    calib_rows = rng.permutation(len(train))[:calibration]
    held_rows = rng.permutation(len(held))[:holdout]

    def stack(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return stack_images(
            [preprocess_image(Image.fromarray(images[i]), spec) for i in rows], spec
        )

    targets = None
    if labels is not None and labels.ndim <= 2 and (labels.ndim == 1 or labels.shape[1] == 1):
        targets = labels.reshape(-1)[held_rows].astype(np.int64)
    return ImageSet(stack(train, calib_rows), stack(held, held_rows), str(path), targets)


def stack_images(tensors: list[np.ndarray], spec: Preprocessing) -> np.ndarray:
    """Preprocessed images as one float32 (N, C, H, W) array; an empty one for no images."""
    shape = (len(tensors), spec.channels, spec.crop_size, spec.crop_size)
    return np.stack(tensors).astype(np.float32) if tensors else np.empty(shape, np.float32)
