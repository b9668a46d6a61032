"""DICOM datasets: ``dicom:DIR`` or ``dicom:LIST.csv``, decoded by ``model.decoding`` (the
service's decoder), so training sees exactly what the service will.

- ``DIR``: the image-folder layouts (``DIR/<class>/...`` or ``DIR/{train,val,test}/<class>/
  ...``); every DICOM Part 10 file counts, whatever its name (DICOM files often have none).
- ``LIST.csv``: rows ``path,label`` (an optional header row ``path,label``), paths relative
  to the CSV's folder; split per class from the seed.

``;window=CENTER,WIDTH`` after the source fixes the VOI window (modality units, e.g. HU)
instead of each file's own; ``;frame=N`` picks a frame of multi-frame files. Both go into
the card, and the service applies them to every upload (docs/medical-imaging.md).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from model.card import ColorMode, DicomPolicy, Window
from model.decoding.sniff import DICOM_MAGIC_OFFSET, is_dicom
from training.datasets.base import DatasetBundle, DatasetError, Split, seeded_split

GRAY_MEAN = (0.5,)
GRAY_STD = (0.25,)
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


def parse_dicom_argument(argument: str) -> tuple[str, DicomPolicy, int | None]:
    """``SOURCE[;window=C,W][;frame=N]`` -> (source, policy, frame), or ``DatasetError``."""
    source, *options = argument.split(";")
    if not source:
        raise DatasetError("dicom needs a folder or a CSV: dicom:DIR or dicom:LIST.csv")
    policy, frame = DicomPolicy(), None
    for option in options:
        key, _, value = option.partition("=")
        if key == "window":
            policy = DicomPolicy(window=_window(value))
        elif key == "frame" and value.isdigit():
            frame = int(value)
        else:
            raise DatasetError(
                f"unknown dicom option {option!r}; valid: window=CENTER,WIDTH (WIDTH >= 1), "
                "frame=N (N >= 0)"
            )
    return source, policy, frame


def _window(value: str) -> Window:
    try:
        center, width = (float(part) for part in value.split(","))
        return Window(center=center, width=width)
    except ValueError:
        raise DatasetError(
            f"dicom window must be CENTER,WIDTH with WIDTH >= 1 (e.g. window=40,400), got {value!r}"
        ) from None


def list_dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _starts_as_dicom(p))


def _starts_as_dicom(path: Path) -> bool:
    with path.open("rb") as file:
        return is_dicom(file.read(DICOM_MAGIC_OFFSET + 4))


def detect_dicom_color_mode(paths: list[Path], sample: int = 32) -> ColorMode:
    """``L`` when every sampled file is MONOCHROME1/2, else ``RGB`` (header only)."""
    import pydicom

    step = max(1, len(paths) // sample)
    for path in paths[::step]:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        if str(header.get("PhotometricInterpretation", "")).strip() not in _GRAYSCALE:
            return "RGB"
    return "L"


def load_dicom_csv(path: Path, *, seed: int) -> tuple[Split, Split, Split, tuple[str, ...]]:
    with path.open(newline="") as file:
        rows = [row for row in csv.reader(file) if row]
    if rows and [cell.strip().lower() for cell in rows[0]] == ["path", "label"]:
        rows = rows[1:]
    bad = next((n for n, row in enumerate(rows, 1) if len(row) != 2), None)
    if bad is not None:
        raise DatasetError(f"{path}: row {bad} is not 'path,label'")
    files = [(path.parent / row[0].strip()) for row in rows]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DatasetError(f"{path}: {len(missing)} listed files do not exist, e.g. {missing[0]}")
    labels = tuple(sorted({row[1].strip() for row in rows}))
    if len(labels) < 2:
        raise DatasetError(f"{path} needs at least two labels; found {list(labels) or 'none'}")
    targets = np.array([labels.index(row[1].strip()) for row in rows], dtype=np.int64)
    pool = Split(files, targets)
    train, val, test = seeded_split(targets, (0.1, 0.2), seed)
    return pool.subset(train), pool.subset(val), pool.subset(test), labels


def load_dicom(argument: str, data_root: Path | None, *, seed: int = 0) -> DatasetBundle:
    """The bundle a ``dicom:`` spec names; the window and frame go into its preprocessing."""
    from training.datasets.imagefolder import load_image_folder

    text, policy, frame = parse_dicom_argument(argument)
    source = Path(text)
    if data_root is not None and not source.is_absolute():
        source = data_root / source
    if source.suffix.lower() == ".csv":
        if not source.is_file():
            raise DatasetError(f"dicom list {source} does not exist")
        train, val, test, labels = load_dicom_csv(source, seed=seed)
        color_mode = detect_dicom_color_mode(list(train.images))
        bundle = DatasetBundle(
            name=f"dicom:{source.name}",
            task="binary" if len(labels) == 2 else "multiclass",
            labels=labels,
            color_mode=color_mode,
            mean=GRAY_MEAN if color_mode == "L" else RGB_MEAN,
            std=GRAY_STD if color_mode == "L" else RGB_STD,
            train=train,
            val=val,
            test=test,
        )
    else:
        bundle = load_image_folder(
            source,
            seed=seed,
            name=f"dicom:{source.name}",
            list_files=list_dicom_files,
            detect_color_mode=detect_dicom_color_mode,
        )
    return replace(bundle, dicom=policy, frame=frame)
