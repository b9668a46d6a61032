"""How a reduced-precision model is checked against fp32, and the report of that check."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from model.card import ModelCard
from model.quantize.images import ImageSet, QuantizationError

Precision = Literal["int8", "fp16"]

MIN_INT8_AGREEMENT = 0.99
MIN_FP16_AGREEMENT = 0.99
FP16_TOLERANCE = 1e-2  # max abs difference of probabilities vs fp32


@dataclass(frozen=True)
class PrecisionReport:
    precision: Precision
    reference: str
    checked_on: str
    images: int
    image_source: str
    top1_agreement: float
    max_abs_diff: float
    min_agreement: float
    settings: dict[str, object]
    accuracy_fp32: float | None = None  # on the holdout, where its classes are known
    accuracy_reduced: float | None = None
    notes: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@dataclass(frozen=True)
class ReducedPrecisionExport:
    path: Path
    card: ModelCard
    report: PrecisionReport


def run_model(model: Path, images: np.ndarray, providers: list[str], batch: int = 32) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=providers)
    name = session.get_inputs()[0].name
    outputs = [
        session.run(None, {name: images[i : i + batch]})[0] for i in range(0, len(images), batch)
    ]
    return np.concatenate(outputs).astype(np.float32)


def gpu_provider() -> str | None:
    available = ort.get_available_providers()
    return "CUDAExecutionProvider" if "CUDAExecutionProvider" in available else None


def compare_precision(
    fp32_model: Path,
    reduced_model: Path,
    images: np.ndarray,
    targets: np.ndarray | None,
    providers: list[str],
) -> dict[str, float]:
    """Top-1 agreement and max abs difference of the reduced model's probabilities against
    fp32 on CPU, and both accuracies where targets are known."""
    reference = run_model(fp32_model, images, ["CPUExecutionProvider"])
    candidate = run_model(reduced_model, images, providers)
    figures = {
        "top1_agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()),
        "max_abs_diff": float(np.abs(reference - candidate).max()),
    }
    if targets is not None and len(targets) == len(images):
        figures["accuracy_fp32"] = float((reference.argmax(1) == targets).mean())
        figures["accuracy_reduced"] = float((candidate.argmax(1) == targets).mean())
    return figures


def check_precision(
    fp32_model: Path,
    reduced: Path,
    precision: Precision,
    images: ImageSet | None,
    card: ModelCard,
    settings: dict[str, object],
    seed: int,
) -> PrecisionReport:
    targets: np.ndarray | None
    if images is not None and len(images.holdout):
        check, targets = images.holdout, images.holdout_targets
        source = f"{images.source} (holdout)"
    elif images is not None:
        check, targets, source = images.calibration, None, f"{images.source} (calibration)"
    else:
        check = np.random.default_rng(seed).standard_normal(
            (64, *card.input_shape), dtype=np.float32
        )
        targets, source = None, "random normal inputs (no images given)"
    gpu = gpu_provider() if precision == "fp16" else None
    providers = [gpu, "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
    figures = compare_precision(fp32_model, reduced, check, targets, providers)
    notes = ""
    checked_on = providers[0]
    if precision == "fp16" and gpu is None:
        checked_on = "CPUExecutionProvider (fp16 emulated through casts)"
        notes = (
            "GPU parity not checked: no CUDA provider here. onnxruntime's CPU provider runs "
            "the fp16 graph with fp32 kernels between casts, which checks the fp16 rounding "
            "of weights and activations, not the GPU kernels."
        )
    return PrecisionReport(
        precision=precision,
        reference="fp32 ONNX on onnxruntime CPUExecutionProvider",
        checked_on=checked_on,
        images=len(check),
        image_source=source,
        top1_agreement=figures["top1_agreement"],
        max_abs_diff=figures["max_abs_diff"],
        min_agreement=MIN_INT8_AGREEMENT if precision == "int8" else MIN_FP16_AGREEMENT,
        settings=settings,
        accuracy_fp32=figures.get("accuracy_fp32"),
        accuracy_reduced=figures.get("accuracy_reduced"),
        notes=notes,
    )


def enforce_thresholds(report: PrecisionReport) -> None:
    if report.top1_agreement < report.min_agreement:
        raise QuantizationError(
            f"{report.precision} top-1 agreement with fp32 is {report.top1_agreement:.2%} on "
            f"{report.images} images ({report.image_source}), below "
            f"{report.min_agreement:.0%}: ship the fp32 model, or calibrate on more "
            "representative training images"
        )
    if report.precision == "fp16" and report.max_abs_diff > FP16_TOLERANCE:
        raise QuantizationError(
            f"fp16 probabilities differ from fp32 by up to {report.max_abs_diff:.3g} "
            f"(tolerance {FP16_TOLERANCE:g})"
        )
