"""Reduced-precision exports into the model repository, with ``precision_report.json``."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from model.card import ModelCard, read_card, write_card
from model.checkpoint import Checkpoint, load_checkpoint
from model.export import ExportError, export_checkpoint
from model.files import write_atomically
from model.layout import model_file, next_version
from model.quantize.checks import (
    FP16_TOLERANCE,
    Precision,
    PrecisionReport,
    check_precision,
    enforce_thresholds,
)
from model.quantize.fp16 import convert_fp16
from model.quantize.images import (
    CALIBRATION_IMAGES,
    HOLDOUT_IMAGES,
    ImageSet,
    QuantizationError,
    load_image_set,
)
from model.quantize.int8 import quantize_int8

log = logging.getLogger(__name__)

REPORT_NAME = "precision_report.json"


@dataclass(frozen=True)
class ReducedPrecisionExport:
    path: Path
    card: ModelCard
    report: PrecisionReport


def reduce_precision(
    fp32_model: str | Path,
    output: str | Path,
    precision: Precision,
    images: ImageSet | None,
    *,
    reduce_range: bool | None = None,
    seed: int = 0,
    enforce: bool = True,
) -> PrecisionReport:
    """Convert an exported fp32 ONNX file (with its card) to ``precision`` at ``output``.

    The card is carried over with ``export.precision`` set; the comparison with fp32 goes
    into the returned report. With ``enforce`` (the export path) a model below the
    agreement threshold raises QuantizationError and nothing is written.
    """
    fp32_model, output = Path(fp32_model), Path(output)
    card = read_card(fp32_model)
    with tempfile.TemporaryDirectory() as tmp:
        reduced = Path(tmp) / "reduced.onnx"
        if precision == "int8":
            if images is None or len(images.calibration) == 0:
                raise QuantizationError("int8 needs calibration images (--calibration)")
            settings = quantize_int8(
                fp32_model, reduced, images.calibration, reduce_range=reduce_range
            )
        else:
            settings = {**convert_fp16(fp32_model, reduced), "tolerance": FP16_TOLERANCE}
        report = check_precision(fp32_model, reduced, precision, images, card, settings, seed)
        if enforce:
            enforce_thresholds(report)
        proto = onnx.load(str(reduced))
    assert card.export is not None, "an exported model's card records its export"
    export = card.export.model_copy(
        update={"precision": precision, "parity_max_abs_diff": report.max_abs_diff}
    )
    card = card.model_copy(update={"export": export})
    write_card(proto, card)
    write_atomically(output, lambda handle: handle.write(proto.SerializeToString()))
    return report


def export_reduced_precision(
    checkpoint: str | Path | Checkpoint,
    models_dir: str | Path,
    name: str,
    *,
    precision: Precision,
    calibration: str | Path | ImageSet | None,
    version: int | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
    holdout_images: int = HOLDOUT_IMAGES,
    reduce_range: bool | None = None,
    seed: int = 0,
) -> ReducedPrecisionExport:
    """Export a checkpoint as ``models_dir/name/version/model.onnx`` in ``precision``.

    The fp32 graph is exported and checked against PyTorch first (in a temporary folder);
    ``precision_report.json`` beside the model records the comparison with it.
    ``calibration`` is an image folder or ``.npz`` (read with ``load_image_set``) or the
    images themselves, preprocessed by the caller (a training run's own dataset).
    """
    if precision == "int8" and calibration is None:
        raise QuantizationError("int8 needs calibration images (--calibration)")
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    version = version if version is not None else next_version(Path(models_dir), name)
    target = model_file(Path(models_dir), name, version)
    if target.exists():
        raise ExportError(f"{target} exists already; versions are immutable, pick another")
    images: ImageSet | None
    if calibration is None or isinstance(calibration, ImageSet):
        images = calibration
    else:
        images = load_image_set(
            calibration,
            ckpt.config.preprocessing,
            ckpt.config.labels,
            calibration=calibration_images,
            holdout=holdout_images,
            seed=seed,
        )
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_checkpoint(ckpt, tmp, name, version=version, seed=seed)
        report = reduce_precision(
            fp32.path, target, precision, images, reduce_range=reduce_range, seed=seed
        )
    text = report.to_json() + "\n"
    write_atomically(target.parent / REPORT_NAME, lambda handle: handle.write(text.encode()))
    log.info(
        "exported %s (%s; top-1 agreement with fp32 %.2f%% on %d images, checked on %s)",
        target,
        precision,
        100 * report.top1_agreement,
        report.images,
        report.checked_on,
    )
    return ReducedPrecisionExport(target, read_card(target), report)
