"""MedMNIST v2 2D datasets, read from the ``.npz`` files the project distributes.

Files: ``FLAG.npz`` (28 px) or ``FLAG_SIZE.npz`` (64, 128, 224 px), each holding
``{train,val,test}_images`` (uint8, N x H x W or N x H x W x 3) and ``{train,val,test}_labels``
(N x 1 class indices, or N x 14 0/1 findings for ChestMNIST). Task types and label names
follow the official ``medmnist.INFO``; RetinaMNIST's ordinal grades are treated as classes,
as the MedMNIST benchmark does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.card import ColorMode, Task
from training.datasets.base import DatasetBundle, DatasetError, Split

# The MedMNIST reference training scripts normalise with mean 0.5, std 0.5 per channel.
MEAN, STD = 0.5, 0.5

_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)


@dataclass(frozen=True)
class MedMNISTInfo:
    flag: str
    task: Task
    labels: tuple[str, ...]
    color_mode: ColorMode
    hflip: bool  # False where left and right matter (organ laterality, chest X-rays)
    official_task: str  # as medmnist.INFO names it


FLAGS: dict[str, MedMNISTInfo] = {
    i.flag: i
    for i in (
        MedMNISTInfo(
            "pathmnist",
            "multiclass",
            (
                "adipose",
                "background",
                "debris",
                "lymphocytes",
                "mucus",
                "smooth muscle",
                "normal colon mucosa",
                "cancer-associated stroma",
                "colorectal adenocarcinoma epithelium",
            ),
            "RGB",
            True,
            "multi-class",
        ),
        MedMNISTInfo(
            "chestmnist",
            "multilabel",
            (
                "atelectasis",
                "cardiomegaly",
                "effusion",
                "infiltration",
                "mass",
                "nodule",
                "pneumonia",
                "pneumothorax",
                "consolidation",
                "edema",
                "emphysema",
                "fibrosis",
                "pleural",
                "hernia",
            ),
            "L",
            False,
            "multi-label, binary-class",
        ),
        MedMNISTInfo(
            "dermamnist",
            "multiclass",
            (
                "actinic keratoses and intraepithelial carcinoma",
                "basal cell carcinoma",
                "benign keratosis-like lesions",
                "dermatofibroma",
                "melanoma",
                "melanocytic nevi",
                "vascular lesions",
            ),
            "RGB",
            True,
            "multi-class",
        ),
        MedMNISTInfo(
            "octmnist",
            "multiclass",
            ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
            "L",
            False,
            "multi-class",
        ),
        MedMNISTInfo(
            "pneumoniamnist", "binary", ("normal", "pneumonia"), "L", False, "binary-class"
        ),
        MedMNISTInfo(
            "retinamnist",
            "multiclass",
            ("grade 0", "grade 1", "grade 2", "grade 3", "grade 4"),
            "RGB",
            True,
            "ordinal-regression",
        ),
        MedMNISTInfo(
            "breastmnist", "binary", ("malignant", "normal, benign"), "L", True, "binary-class"
        ),
        MedMNISTInfo(
            "bloodmnist",
            "multiclass",
            (
                "basophil",
                "eosinophil",
                "erythroblast",
                "immature granulocytes",
                "lymphocyte",
                "monocyte",
                "neutrophil",
                "platelet",
            ),
            "RGB",
            True,
            "multi-class",
        ),
        MedMNISTInfo(
            "tissuemnist",
            "multiclass",
            (
                "Collecting Duct, Connecting Tubule",
                "Distal Convoluted Tubule",
                "Glomerular endothelial cells",
                "Interstitial endothelial cells",
                "Leukocytes",
                "Podocytes",
                "Proximal Tubule Segments",
                "Thick Ascending Limb",
            ),
            "L",
            True,
            "multi-class",
        ),
        MedMNISTInfo("organamnist", "multiclass", _ORGANS, "L", False, "multi-class"),
        MedMNISTInfo("organcmnist", "multiclass", _ORGANS, "L", False, "multi-class"),
        MedMNISTInfo("organsmnist", "multiclass", _ORGANS, "L", False, "multi-class"),
    )
}


def available_sizes(root: Path, flag: str) -> dict[int, Path]:
    found = {}
    for path in root.glob(f"{flag}*.npz"):
        match = re.fullmatch(rf"{flag}(?:_(\d+))?\.npz", path.name)
        if match:
            found[int(match.group(1) or 28)] = path
    return found


def find_npz(root: Path, flag: str, size: int | None = None) -> Path:
    """The file for ``size`` if present; else the smallest larger one; else the largest."""
    found = available_sizes(root, flag)
    if not found:
        raise DatasetError(
            f"no {flag}.npz or {flag}_SIZE.npz in {root} (download them from "
            "https://zenodo.org/records/10519652; nothing is downloaded at run time)"
        )
    if size is None or size in found:
        return found[size] if size is not None else found[min(found)]
    larger = [s for s in found if s >= size]
    return found[min(larger)] if larger else found[max(found)]


def _split(data: np.lib.npyio.NpzFile, split: str, info: MedMNISTInfo, path: Path) -> Split:
    try:
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    except KeyError as exc:
        raise DatasetError(f"{path} lacks key {exc.args[0]!r} of the MedMNIST format") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DatasetError(
            f"{path}: {split}_images must be uint8 N x H x W[ x 3], "
            f"got {images.dtype} {images.shape}"
        )
    if info.task == "multilabel":
        if labels.ndim != 2 or labels.shape[1] != len(info.labels):
            raise DatasetError(
                f"{path}: {split}_labels must be N x {len(info.labels)}, got {labels.shape}"
            )
        targets = labels.astype(np.float32)
    else:
        targets = labels.reshape(len(labels)).astype(np.int64)
        if len(targets) and (targets.min() < 0 or targets.max() >= len(info.labels)):
            raise DatasetError(
                f"{path}: {split}_labels hold classes outside 0..{len(info.labels) - 1}"
            )
    return Split(images, targets)


def load_medmnist(root: Path, flag: str, size: int | None = None) -> DatasetBundle:
    info = FLAGS.get(flag)
    if info is None:
        raise DatasetError(f"unknown MedMNIST flag {flag!r}; valid flags: {', '.join(FLAGS)}")
    path = find_npz(root, flag, size)
    with np.load(path) as data:
        train, val, test = (_split(data, s, info, path) for s in ("train", "val", "test"))
    channels = 1 if info.color_mode == "L" else 3
    return DatasetBundle(
        name=f"medmnist:{flag}",
        task=info.task,
        labels=info.labels,
        color_mode=info.color_mode,
        mean=(MEAN,) * channels,
        std=(STD,) * channels,
        train=train,
        val=val,
        test=test,
        hflip=info.hflip,
        notes={"file": path.name, "official_task": info.official_task},
    )
