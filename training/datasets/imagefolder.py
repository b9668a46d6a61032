"""Image folders: ``root/<class>/*.png`` or ``root/{train,val,test}/<class>/*.png``.

Without split sub-folders the samples are split per class, deterministically from a seed.
With a ``train`` folder but no ``val`` (or ``test``), those are split off ``train``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from model.card import ColorMode
from training.datasets.base import DatasetBundle, DatasetError, Split, list_images, seeded_split

VAL_NAMES = ("val", "valid", "validation")
TEST_NAMES = ("test",)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN = (0.5,)
GRAY_STD = (0.25,)


FileLister = Callable[[Path], list[Path]]


def _classes(folder: Path, list_files: FileLister) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and list_files(p))


def _collect(
    folder: Path, classes: list[str], list_files: FileLister
) -> tuple[list[Path], np.ndarray]:
    paths: list[Path] = []
    targets: list[int] = []
    for index, name in enumerate(classes):
        found = list_files(folder / name) if (folder / name).is_dir() else []
        paths += found
        targets += [index] * len(found)
    return paths, np.asarray(targets, dtype=np.int64)


def _first_existing(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def detect_color_mode(paths: list[Path], sample: int = 32) -> ColorMode:
    """``L`` when every sampled image is single-channel, else ``RGB``."""
    step = max(1, len(paths) // sample)
    for path in paths[::step]:
        with Image.open(path) as image:
            if image.mode not in ("L", "LA", "I", "I;16", "1", "F"):
                return "RGB"
    return "L"


def load_image_folder(
    root: str | Path,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    name: str | None = None,
    hflip: bool = True,
    list_files: FileLister = list_images,
    detect_color_mode: Callable[[list[Path]], ColorMode] = detect_color_mode,
) -> DatasetBundle:
    """``list_files`` finds a class folder's samples and ``detect_color_mode`` looks at
    them: image files by suffix by default (the ``dicom:`` kind passes its own)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist")
    train_dir = root / "train"
    if train_dir.is_dir():
        classes = _classes(train_dir, list_files)
        paths, targets = _collect(train_dir, classes, list_files)
        val_dir, test_dir = _first_existing(root, VAL_NAMES), _first_existing(root, TEST_NAMES)
        train_idx, val_idx, test_idx = seeded_split(
            targets,
            (0.0 if val_dir else val_fraction, 0.0 if test_dir else test_fraction),
            seed,
        )
        pool = Split(paths, targets)
        train = pool.subset(train_idx)
        val = Split(*_collect(val_dir, classes, list_files)) if val_dir else pool.subset(val_idx)
        test = (
            Split(*_collect(test_dir, classes, list_files)) if test_dir else pool.subset(test_idx)
        )
    else:
        classes = _classes(root, list_files)
        paths, targets = _collect(root, classes, list_files)
        pool = Split(paths, targets)
        train_idx, val_idx, test_idx = seeded_split(targets, (val_fraction, test_fraction), seed)
        train, val, test = pool.subset(train_idx), pool.subset(val_idx), pool.subset(test_idx)
    if len(classes) < 2:
        raise DatasetError(
            f"{root} needs at least two class folders holding images "
            f"(root/<class>/*.png or root/train/<class>/*.png); found {classes or 'none'}"
        )
    if not len(train) or not len(val) or not len(test):
        raise DatasetError(
            f"{root}: empty split (train {len(train)}, val {len(val)}, test {len(test)} images)"
        )
    color_mode = detect_color_mode(list(train.images))
    gray = color_mode == "L"
    return DatasetBundle(
        name=name or f"imagefolder:{root.name}",
        task="binary" if len(classes) == 2 else "multiclass",
        labels=tuple(classes),
        color_mode=color_mode,
        mean=GRAY_MEAN if gray else IMAGENET_MEAN,
        std=GRAY_STD if gray else IMAGENET_STD,
        train=train,
        val=val,
        test=test,
        hflip=hflip,
    )
