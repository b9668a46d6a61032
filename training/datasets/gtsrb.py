"""The German Traffic Sign Recognition Benchmark, in the layout torchvision's ``GTSRB`` reads.

``ROOT/gtsrb/GTSRB/Training/000NN/*.ppm`` (with the per-class ``GT-000NN.csv``) and
``ROOT/gtsrb/GTSRB/Final_Test/Images/*.ppm`` labelled by ``GT-final_test.csv`` (in
``ROOT/gtsrb/`` as torchvision expects it, or beside the test images as the archive ships
it). ``ROOT`` may also be the ``gtsrb`` folder itself. The CSVs are ``;``-separated with
columns ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``.

GTSRB has no validation split. Its training images come in tracks of ~30 frames of one
physical sign (``TTTTT_FFFFF.ppm``), so validation takes whole tracks: frames of one sign
on both sides would flatter the validation score.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from training.datasets.base import Box, DatasetBundle, DatasetError, Split

SIGN_NAMES: tuple[str, ...] = (
    "Speed limit (20km/h)",
    "Speed limit (30km/h)",
    "Speed limit (50km/h)",
    "Speed limit (60km/h)",
    "Speed limit (70km/h)",
    "Speed limit (80km/h)",
    "End of speed limit (80km/h)",
    "Speed limit (100km/h)",
    "Speed limit (120km/h)",
    "No passing",
    "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection",
    "Priority road",
    "Yield",
    "Stop",
    "No vehicles",
    "Vehicles over 3.5 metric tons prohibited",
    "No entry",
    "General caution",
    "Dangerous curve to the left",
    "Dangerous curve to the right",
    "Double curve",
    "Bumpy road",
    "Slippery road",
    "Road narrows on the right",
    "Road work",
    "Traffic signals",
    "Pedestrians",
    "Children crossing",
    "Bicycles crossing",
    "Beware of ice/snow",
    "Wild animals crossing",
    "End of all speed and passing limits",
    "Turn right ahead",
    "Turn left ahead",
    "Ahead only",
    "Go straight or right",
    "Go straight or left",
    "Keep right",
    "Keep left",
    "Roundabout mandatory",
    "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
)
# Per-channel statistics of the GTSRB training set.
MEAN = (0.3403, 0.3121, 0.3214)
STD = (0.2724, 0.2608, 0.2669)


def _base(root: Path) -> Path:
    for candidate in (root / "gtsrb", root):
        if (candidate / "GTSRB" / "Training").is_dir():
            return candidate
    raise DatasetError(
        f"no GTSRB/Training folder under {root} or {root / 'gtsrb'} "
        "(expected torchvision's GTSRB layout; nothing is downloaded at run time)"
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";", skipinitialspace=True))


def _box(row: dict[str, str]) -> Box:
    # ROI corners are inclusive pixel coordinates; PIL's crop box excludes the right/bottom.
    return (
        int(row["Roi.X1"]),
        int(row["Roi.Y1"]),
        int(row["Roi.X2"]) + 1,
        int(row["Roi.Y2"]) + 1,
    )


def _training_samples(folder: Path) -> tuple[list[Path], list[int], list[Box | None]]:
    paths: list[Path] = []
    targets: list[int] = []
    boxes: list[Box | None] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
        class_id = int(class_dir.name)
        if class_id >= len(SIGN_NAMES):
            raise DatasetError(f"{class_dir}: GTSRB has classes 0..{len(SIGN_NAMES) - 1}")
        annotations = class_dir / f"GT-{class_dir.name}.csv"
        if annotations.is_file():
            for row in _read_csv(annotations):
                paths.append(class_dir / row["Filename"])
                targets.append(class_id)
                boxes.append(_box(row))
        else:
            for path in sorted(class_dir.glob("*.ppm")):
                paths.append(path)
                targets.append(class_id)
                boxes.append(None)
    if not paths:
        raise DatasetError(f"{folder} holds no class folders with .ppm images")
    return paths, targets, boxes


def _test_csv(base: Path) -> Path:
    for candidate in (
        base / "GT-final_test.csv",
        base / "GTSRB" / "Final_Test" / "Images" / "GT-final_test.csv",
        base / "GTSRB" / "GT-final_test.csv",
    ):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"no GT-final_test.csv in {base} or beside GTSRB/Final_Test/Images: the test labels "
        "ship separately from the test images"
    )


def track_split(
    paths: list[Path], targets: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices with whole tracks of each class in validation."""
    rng = np.random.default_rng(seed)
    tracks = np.array([f"{t}/{p.name.split('_')[0]}" for p, t in zip(paths, targets, strict=True)])
    val_mask = np.zeros(len(paths), dtype=bool)
    for label in np.unique(targets):
        class_tracks = np.unique(tracks[targets == label])
        n_val = round(len(class_tracks) * val_fraction) if len(class_tracks) > 1 else 0
        n_val = max(n_val, 1) if len(class_tracks) > 1 else 0
        chosen = rng.choice(class_tracks, size=n_val, replace=False)
        val_mask |= np.isin(tracks, chosen)
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def load_gtsrb(
    root: Path, *, roi_crop: bool = False, seed: int = 0, val_fraction: float = 0.1
) -> DatasetBundle:
    base = _base(root)
    paths, target_list, box_list = _training_samples(base / "GTSRB" / "Training")
    targets = np.asarray(target_list, dtype=np.int64)
    pool = Split(paths, targets, _boxes(box_list, roi_crop))
    train_idx, val_idx = track_split(paths, targets, val_fraction, seed)
    rows = _read_csv(_test_csv(base))
    images = base / "GTSRB" / "Final_Test" / "Images"
    test = Split(
        [images / row["Filename"] for row in rows],
        np.asarray([int(row["ClassId"]) for row in rows], dtype=np.int64),
        [_box(row) for row in rows] if roi_crop else None,
    )
    if not len(test):
        raise DatasetError(f"{_test_csv(base)} lists no test images")
    return DatasetBundle(
        name="gtsrb:roi" if roi_crop else "gtsrb",
        task="multiclass",
        labels=SIGN_NAMES,
        color_mode="RGB",
        mean=MEAN,
        std=STD,
        train=pool.subset(train_idx),
        val=pool.subset(val_idx),
        test=test,
        hflip=False,  # mirrored "keep left" is "keep right"
    )


def _boxes(boxes: list[Box | None], roi_crop: bool) -> list[Box] | None:
    if not roi_crop:
        return None
    if any(b is None for b in boxes):
        raise DatasetError("ROI crop needs the GT-000NN.csv annotation in every class folder")
    return [b for b in boxes if b is not None]
