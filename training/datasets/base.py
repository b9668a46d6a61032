"""What every dataset loader returns: three splits of images with targets, and the facts
(task, labels, colour mode, mean/std) that go into the model config and card.

Torch-free: images are file paths or uint8 arrays; ``training.data`` wraps them for torch.
Evaluation preprocessing of a sample always goes through ``model.preprocess``, the code the
service runs on an upload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from model.card import ColorMode, DicomPolicy, Interpolation, Preprocessing, Task
from model.decoding import FILE_MAX_PIXELS, DecodeError, decode_image, load_and_preprocess
from model.preprocess import preprocess_image, to_color_mode

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")


class DatasetError(ValueError):
    """A dataset is missing, malformed or asked for with a bad spec."""


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Split:
    """One split: ``images`` are file paths or a uint8 array (N,H,W) / (N,H,W,3).

    ``targets`` is int64 (N,) for multiclass and binary, float32 (N, L) of 0/1 for
    multilabel. ``boxes`` optionally crops each file to a region (GTSRB ROI) first.
    """

    images: Sequence[Path] | np.ndarray
    targets: np.ndarray
    boxes: Sequence[Box] | None = None

    def __post_init__(self) -> None:
        if len(self.images) != len(self.targets):
            raise DatasetError(f"{len(self.images)} images but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.images, np.ndarray)

    def load(self, index: int, spec: Preprocessing) -> Image.Image:
        """The decoded image in ``spec.color_mode`` (8-bit) at its own size: the training
        augmentation input. Files decode as the service decodes them (``model.decoding``:
        DICOM windowing, the frame policy), then round to 8 bits for the augmentations."""
        if isinstance(self.images, np.ndarray):
            return to_color_mode(Image.fromarray(self.images[index]), spec.color_mode)
        with self._decoded(index, spec) as image:
            return to_color_mode(image, spec.color_mode)

    def preprocess(self, index: int, spec: Preprocessing) -> np.ndarray:
        """The evaluation tensor (C, crop, crop), exactly as the service computes it."""
        if isinstance(self.images, np.ndarray):
            return preprocess_image(Image.fromarray(self.images[index]), spec)
        if self.boxes is None:
            return load_and_preprocess(self.images[index], spec)
        with self._decoded(index, spec) as image:
            return preprocess_image(image, spec)

    def _decoded(self, index: int, spec: Preprocessing) -> Image.Image:
        """The file decoded by ``model.decoding`` (cropped to its box when it has one)."""
        path = Path(self.images[index])
        try:
            image = decode_image(path.read_bytes(), spec, FILE_MAX_PIXELS)
        except DecodeError as exc:
            raise DatasetError(f"{path}: {exc.message}") from exc
        if self.boxes is None:
            return image
        with image:
            return image.crop(self.boxes[index])

    def subset(self, indices: Sequence[int] | np.ndarray) -> Split:
        indices = np.asarray(indices, dtype=np.int64)
        if isinstance(self.images, np.ndarray):
            images: Sequence[Path] | np.ndarray = self.images[indices]
        else:
            images = [self.images[i] for i in indices]
        boxes = None if self.boxes is None else [self.boxes[i] for i in indices]
        return Split(images, self.targets[indices], boxes)

    def class_counts(self, num_classes: int) -> np.ndarray:
        if self.targets.ndim == 2:
            return self.targets.sum(axis=0)
        return np.bincount(self.targets, minlength=num_classes)


@dataclass(frozen=True)
class DatasetBundle:
    name: str  # recorded in the card, e.g. "medmnist:pneumoniamnist"
    task: Task
    labels: tuple[str, ...]
    color_mode: ColorMode
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train: Split
    val: Split
    test: Split
    hflip: bool = True  # whether a horizontal mirror keeps the label (not for signs)
    interpolation: Interpolation = "bilinear"
    notes: dict[str, str] = field(default_factory=dict)
    dicom: DicomPolicy = field(default_factory=DicomPolicy)  # the window, into the card
    frame: int | None = None  # the frame of multi-frame files, into the card

    def preprocessing(self, img_size: int, resize_size: int | None = None) -> Preprocessing:
        return Preprocessing(
            color_mode=self.color_mode,
            resize_size=resize_size or img_size,
            crop_size=img_size,
            interpolation=self.interpolation,
            mean=self.mean,
            std=self.std,
            frame=self.frame,
            dicom=self.dicom,
        )

    def limited(self, max_per_split: int | None) -> DatasetBundle:
        """The first ``max_per_split`` samples of each split (quick runs and tests)."""
        if not max_per_split:
            return self
        return replace(
            self,
            train=self.train.subset(np.arange(min(max_per_split, len(self.train)))),
            val=self.val.subset(np.arange(min(max_per_split, len(self.val)))),
            test=self.test.subset(np.arange(min(max_per_split, len(self.test)))),
        )


def list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def seeded_split(
    targets: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic (train, val, test) index arrays, stratified by class.

    Each class gives ``fractions`` of its samples to val and test (at least one each when
    it has three or more), so small folders still have every class in every split.
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for label in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == label))
        count = len(members)
        n_val, n_test = (
            max(round(count * f), 1 if count >= 3 else 0) if f > 0 else 0 for f in fractions
        )
        parts[1].append(members[:n_val])
        parts[2].append(members[n_val : n_val + n_test])
        parts[0].append(members[n_val + n_test :])
    train, val, test = (np.sort(np.concatenate(p)).astype(np.int64) for p in parts)
    return train, val, test
