"""Calibration images for an int8 export, drawn from a training run's own dataset.

``model.quantize`` takes the images as they are handed to it; this module is the hand that
reads a run folder's recorded dataset (train split for calibration, test split held out).
"""

from __future__ import annotations

import numpy as np

from model.card import Preprocessing
from model.quantize import CALIBRATION_IMAGES, HOLDOUT_IMAGES, ImageSet, stack_images
from training.config import read_config_file
from training.datasets import DatasetBundle, load_dataset
from training.run_folder import RunFolder


def bundle_image_set(
    bundle: DatasetBundle,
    spec: Preprocessing,
    *,
    calibration: int = CALIBRATION_IMAGES,
    holdout: int = HOLDOUT_IMAGES,
    seed: int = 0,
    source: str,
) -> ImageSet:
    """Random train images for calibration; random test (or validation) images, with their
    targets where they are single-label, held out to compare fp32 and int8."""
    rng = np.random.default_rng(seed)
    calib_rows = rng.permutation(len(bundle.train))[:calibration]
    held_split = bundle.test if len(bundle.test) else bundle.val
    held_rows = rng.permutation(len(held_split))[:holdout]
    targets = held_split.targets[held_rows] if held_split.targets.ndim == 1 else None
    return ImageSet(
        stack_images([bundle.train.preprocess(int(i), spec) for i in calib_rows], spec),
        stack_images([held_split.preprocess(int(i), spec) for i in held_rows], spec),
        source,
        targets,
    )


def run_image_set(
    run: RunFolder,
    spec: Preprocessing,
    *,
    calibration: int = CALIBRATION_IMAGES,
    holdout: int = HOLDOUT_IMAGES,
    seed: int = 0,
) -> ImageSet:
    """The dataset the run recorded in its config, preprocessed with ``spec``."""
    config = read_config_file(run.config)
    bundle = load_dataset(config["data"], config.get("data_root"), seed=config.get("seed", 0))
    return bundle_image_set(
        bundle,
        spec,
        calibration=calibration,
        holdout=holdout,
        seed=seed,
        source=f"{run.path} ({config['data']})",
    )
