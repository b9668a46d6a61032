"""Reduced-precision exports: static int8 (QDQ, per-channel) and fp16, checked against fp32.

``rectifier export --quantize int8 --calibration DIR`` exports the fp32 graph as usual (with
its PyTorch parity check), calibrates activation ranges on a few hundred training images
preprocessed exactly as the service preprocesses uploads (``model.preprocess``), quantises
with onnxruntime's ``quantize_static`` in QDQ format with per-channel weights, and refuses the
result unless its top-1 agrees with fp32 on at least 99% of held-out images.

``--fp16`` converts the fp32 graph to float16 weights and activations, keeping float32 inputs
and outputs so clients and the service feed it the same tensors. Its numerics are checked on
a GPU when onnxruntime offers CUDA; on a CPU-only machine onnxruntime runs the fp16 graph by
casting to fp32 around kernels it lacks, which checks the weight rounding but not the GPU
kernels, and the report says so.

Either way ``model.onnx`` carries the card with ``export.precision`` set, and a
``precision_report.json`` beside it records what was checked, on what, and the figures.
"""

from __future__ import annotations

import json
import logging
import random
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort

from model.card import ModelCard, Preprocessing, read_card
from model.checkpoint import Checkpoint, load_checkpoint
from model.decoding import load_and_preprocess
from model.export import ExportError, export_checkpoint, write_card
from model.files import write_atomically
from model.layout import model_file, next_version
from model.preprocess import preprocess_image

log = logging.getLogger(__name__)

Precision = Literal["int8", "fp16"]

CALIBRATION_IMAGES = 300
HOLDOUT_IMAGES = 200
MIN_INT8_AGREEMENT = 0.99
MIN_FP16_AGREEMENT = 0.99
FP16_TOLERANCE = 1e-2  # max abs difference of probabilities vs fp32
CALIBRATION_BATCH = 16
REPORT_NAME = "precision_report.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
# Output non-linearities stay in float: quantising probabilities would tie top classes.
FLOAT_OUTPUT_OPS = {"Softmax", "Sigmoid"}


class QuantizationError(ExportError):
    """The reduced-precision model is not faithful enough to fp32, or cannot be built."""


@dataclass(frozen=True)
class ImageSet:
    calibration: np.ndarray  # (N, C, H, W) float32, preprocessed
    holdout: np.ndarray  # may be empty: agreement is then measured on the calibration images
    source: str
    holdout_targets: np.ndarray | None = None  # class indices, where the source names them


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


# --- images ---------------------------------------------------------------------------


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

    ``source`` is a training run folder (its ``config.yaml`` names the dataset: calibration
    on the train split, holdout on the test split), a MedMNIST-style ``.npz`` (``train_images``
    and ``test_images`` / ``val_images``), a folder with ``train/`` and ``test/`` or ``val/``
    subfolders, or any folder of images (searched recursively and split at random). Holdout
    targets are kept where the source names classes that match ``labels``, so accuracy can be
    compared too.
    """
    source = Path(source)
    if source.is_file() and source.suffix == ".npz":
        return _from_npz(source, spec, calibration, holdout, seed)
    if not source.is_dir():
        raise QuantizationError(f"calibration source {source} is neither a folder nor an .npz")
    if (source / "config.yaml").is_file():
        return _from_run(source, spec, calibration, holdout, seed)
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
        _stack([load_and_preprocess(str(p), spec) for p in calib_files], spec),
        _stack([load_and_preprocess(str(p), spec) for p in held_files], spec),
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
        return _stack([preprocess_image(Image.fromarray(images[i]), spec) for i in rows], spec)

    targets = None
    if labels is not None and labels.ndim <= 2 and (labels.ndim == 1 or labels.shape[1] == 1):
        targets = labels.reshape(-1)[held_rows].astype(np.int64)
    return ImageSet(stack(train, calib_rows), stack(held, held_rows), str(path), targets)


def _from_run(
    run: Path, spec: Preprocessing, calibration: int, holdout: int, seed: int
) -> ImageSet:
    """The dataset a training run recorded in its ``config.yaml`` (needs the training package)."""
    try:
        from training.config import read_config_file
        from training.datasets import load_dataset
    except ImportError as exc:
        raise QuantizationError(
            f"{run} is a training run; reading its dataset needs the training package ({exc})"
        ) from exc
    config = read_config_file(run / "config.yaml")
    bundle = load_dataset(config["data"], config.get("data_root"), seed=config.get("seed", 0))
    rng = np.random.default_rng(seed)
    calib_rows = rng.permutation(len(bundle.train))[:calibration]
    held_split = bundle.test if len(bundle.test) else bundle.val
    held_rows = rng.permutation(len(held_split))[:holdout]
    targets = held_split.targets[held_rows] if held_split.targets.ndim == 1 else None
    return ImageSet(
        _stack([bundle.train.preprocess(int(i), spec) for i in calib_rows], spec),
        _stack([held_split.preprocess(int(i), spec) for i in held_rows], spec),
        f"{run} ({config['data']})",
        targets,
    )


def _stack(tensors: list[np.ndarray], spec: Preprocessing) -> np.ndarray:
    shape = (len(tensors), spec.channels, spec.crop_size, spec.crop_size)
    return np.stack(tensors).astype(np.float32) if tensors else np.empty(shape, np.float32)


# --- int8 -----------------------------------------------------------------------------


def cpu_has_vnni() -> bool:
    """Whether this x86 CPU has 8-bit dot-product instructions (no saturation risk)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_vnni|avx_vnni|amx_int8)\b", flags) is not None


def quantize_int8(
    fp32_model: Path,
    output: Path,
    calibration: np.ndarray,
    *,
    reduce_range: bool | None = None,
    calibrate_method: str = "MinMax",
) -> dict[str, object]:
    """Static QDQ quantisation with per-channel int8 weights and uint8 activations.

    ``reduce_range`` (7-bit weights) defaults to on for CPUs without VNNI, where uint8 x int8
    products can saturate; onnxruntime recommends it there. Returns the settings used.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise QuantizationError("no calibration images")
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    proto = onnx.load(str(fp32_model))
    input_name = proto.graph.input[0].name
    float_nodes = [n.name for n in proto.graph.node if n.op_type in FLOAT_OUTPUT_OPS]

    # Equal batches: the histogram calibrators cannot stack a ragged last batch.
    batch = min(CALIBRATION_BATCH, len(calibration))
    calibration = calibration[: len(calibration) - len(calibration) % batch]

    class Batches(CalibrationDataReader):
        """Equal batches; with ``CalibStridedMinMax`` the calibrator reduces each range of
        batches to min/max before the next, so memory holds one batch of activations."""

        def __init__(self) -> None:
            self.starts = list(range(0, len(calibration), batch))
            self.set_range(0, len(self.starts))

        def __len__(self) -> int:
            return len(self.starts)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.pending = iter(self.starts[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self.pending, None)
            return None if start is None else {input_name: calibration[start : start + batch]}

    settings: dict[str, object] = {
        "format": "QDQ",
        "per_channel": True,
        "activation_type": "uint8",
        "weight_type": "int8",
        "reduce_range": reduce_range,
        "calibrate_method": calibrate_method,
        "calibration_images": len(calibration),
        "float_nodes": float_nodes,
    }
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_model), str(prepared))
        quantize_static(
            str(prepared),
            str(output),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
            calibrate_method=CalibrationMethod[calibrate_method],
            extra_options={"CalibStridedMinMax": 1},
        )
    return settings


# --- fp16 -----------------------------------------------------------------------------


def convert_fp16(fp32_model: Path, output: Path) -> dict[str, object]:
    """float16 weights and activations; float32 input and output tensors."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = convert_float_to_float16(onnx.load(str(fp32_model)), keep_io_types=True)
    _sort_topologically(proto.graph)  # the converter appends its input casts at the end
    onnx.checker.check_model(proto)
    onnx.save(proto, str(output))
    return {"keep_io_types": True, "converter": "onnxruntime.transformers.float16"}


def _sort_topologically(graph: onnx.GraphProto) -> None:
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        runnable = [n for n in pending if all(i in ready for i in n.input)]
        if not runnable:
            raise QuantizationError("the fp16 graph has a cycle or a dangling input")
        for node in runnable:
            ready.update(node.output)
            ordered.append(node)
        pending = [n for n in pending if n not in runnable]
    copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del graph.node[:]
    graph.node.extend(copies)


# --- checks ---------------------------------------------------------------------------


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


# --- export ---------------------------------------------------------------------------


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
        report = _check(fp32_model, reduced, precision, images, card, settings, seed)
        if enforce:
            _enforce(report)
        proto = onnx.load(str(reduced))
    assert card.export is not None, "an exported model's card records its export"
    export = card.export.model_copy(
        update={"precision": precision, "parity_max_abs_diff": report.max_abs_diff}
    )
    card = card.model_copy(update={"export": export})
    write_card(proto, card)
    write_atomically(output, lambda handle: handle.write(proto.SerializeToString()))
    return report


def _check(
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


def _enforce(report: PrecisionReport) -> None:
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


def export_reduced_precision(
    checkpoint: str | Path | Checkpoint,
    models_dir: str | Path,
    name: str,
    *,
    precision: Precision,
    calibration: str | Path | None,
    version: int | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
    holdout_images: int = HOLDOUT_IMAGES,
    reduce_range: bool | None = None,
    seed: int = 0,
) -> ReducedPrecisionExport:
    """Export a checkpoint as ``models_dir/name/version/model.onnx`` in ``precision``.

    The fp32 graph is exported and checked against PyTorch first (in a temporary folder);
    ``precision_report.json`` beside the model records the comparison with it.
    """
    if precision == "int8" and calibration is None:
        raise QuantizationError("int8 needs calibration images (--calibration)")
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    version = version if version is not None else next_version(Path(models_dir), name)
    target = model_file(Path(models_dir), name, version)
    if target.exists():
        raise ExportError(f"{target} exists already; versions are immutable, pick another")
    images = None
    if calibration is not None:
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
    (target.parent / REPORT_NAME).write_text(report.to_json() + "\n")
    log.info(
        "exported %s (%s; top-1 agreement with fp32 %.2f%% on %d images, checked on %s)",
        target,
        precision,
        100 * report.top1_agreement,
        report.images,
        report.checked_on,
    )
    return ReducedPrecisionExport(target, read_card(target), report)


def export_from_cli(
    checkpoint: Path,
    out: Path,
    name: str,
    version: int | None,
    quantize: str | None,
    calibration: Path | None,
    fp16: bool,
) -> tuple[str, Path]:
    """``rectifier export --quantize int8 | --fp16``: bad input becomes a typer error naming
    the option; returns the line to print and the file written."""
    import typer

    from model.checkpoint import CheckpointError

    if quantize is not None and fp16:
        raise typer.BadParameter("choose one of --quantize int8 and --fp16", param_hint="--fp16")
    if quantize not in (None, "int8"):
        raise typer.BadParameter(f"{quantize!r}: only int8 is supported", param_hint="--quantize")
    precision: Precision = "fp16" if fp16 else "int8"
    if precision == "int8" and calibration is None:
        raise typer.BadParameter(
            "int8 needs a few hundred training images: a run folder, an image folder or a .npz",
            param_hint="--calibration",
        )
    try:
        result = export_reduced_precision(
            checkpoint, out, name, precision=precision, calibration=calibration, version=version
        )
    except QuantizationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--calibration") from exc
    except (CheckpointError, ExportError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="CHECKPOINT") from exc
    report = result.report
    accuracy = (
        f", accuracy fp32 {report.accuracy_fp32:.2%} -> {precision} {report.accuracy_reduced:.2%}"
        if report.accuracy_fp32 is not None and report.accuracy_reduced is not None
        else ""
    )
    line = (
        f"wrote {result.path} ({precision}: top-1 agreement with fp32 {report.top1_agreement:.2%} "
        f"on {report.images} images{accuracy}; checked on {report.checked_on}; "
        f"report {result.path.parent / REPORT_NAME})"
    )
    return line, result.path
