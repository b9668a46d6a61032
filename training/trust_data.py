"""The images export fits trust from: a training run's own training and validation splits.

Not ``training/calibration.py`` (the int8 calibration images). ``model.export`` takes the
images as they are handed to it; this module reads the dataset a run folder recorded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from model.card import Preprocessing
from model.quantize import stack_images
from model.trust_fit import TrustImages
from training.config import read_config_file
from training.datasets import DatasetBundle, Split, load_dataset
from training.run_folder import RunFolder

log = logging.getLogger(__name__)

# Enough for a 512-feature shared covariance and a 95 % threshold; minutes, not hours.
TRAIN_IMAGES = 2000
VALIDATION_IMAGES = 1000


def run_of(checkpoint: Path) -> RunFolder | None:
    """The run folder a checkpoint argument belongs to (the folder itself, or the file's)."""
    for candidate in (checkpoint, checkpoint.parent):
        if candidate.is_dir() and RunFolder.is_run(candidate):
            return RunFolder(candidate)
    return None


def split_images(
    split: Split, spec: Preprocessing, limit: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` random images of ``split``, preprocessed, with their labels."""
    rows = np.sort(rng.permutation(len(split))[:limit])
    images = stack_images([split.preprocess(int(i), spec) for i in rows], spec)
    return images, split.targets[rows].astype(np.int64)


def bundle_trust_images(
    bundle: DatasetBundle,
    spec: Preprocessing,
    dataset: str,
    *,
    train: int = TRAIN_IMAGES,
    validation: int = VALIDATION_IMAGES,
    seed: int = 0,
) -> TrustImages:
    rng = np.random.default_rng(seed)
    train_images, train_labels = split_images(bundle.train, spec, train, rng)
    val_images, val_labels = split_images(bundle.val, spec, validation, rng)
    return TrustImages(train_images, train_labels, val_images, val_labels, dataset)


def run_trust_images(run: RunFolder, spec: Preprocessing, *, seed: int = 0) -> TrustImages:
    """The dataset ``run`` recorded, its training and validation splits preprocessed."""
    config = read_config_file(run.config)
    bundle = load_dataset(
        config["data"],
        config.get("data_root"),
        seed=config.get("seed", 0),
        img_size=config.get("img_size"),
    )
    if bundle.train.targets.ndim != 1:
        raise ValueError("trust is fitted for single-label models only")
    log.info("fitting trust on %s (%s)", run.path, config["data"])
    return bundle_trust_images(bundle, spec, str(config["data"]), seed=seed)
