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

One module per concern: ``images`` (calibration and holdout images, handed in by the
caller), ``int8``, ``fp16``, ``checks`` (comparison with fp32, the report) and ``export``
(into the model repository).
"""

from model.quantize.checks import (
    FP16_TOLERANCE,
    MIN_FP16_AGREEMENT,
    MIN_INT8_AGREEMENT,
    Precision,
    PrecisionReport,
    compare_precision,
    gpu_provider,
    run_model,
)
from model.quantize.export import (
    REPORT_NAME,
    ReducedPrecisionExport,
    export_reduced_precision,
    reduce_precision,
)
from model.quantize.fp16 import convert_fp16
from model.quantize.images import (
    CALIBRATION_IMAGES,
    HOLDOUT_IMAGES,
    ImageSet,
    QuantizationError,
    load_image_set,
    stack_images,
)
from model.quantize.int8 import cpu_has_vnni, quantize_int8

__all__ = [
    "CALIBRATION_IMAGES",
    "FP16_TOLERANCE",
    "HOLDOUT_IMAGES",
    "MIN_FP16_AGREEMENT",
    "MIN_INT8_AGREEMENT",
    "REPORT_NAME",
    "ImageSet",
    "Precision",
    "PrecisionReport",
    "QuantizationError",
    "ReducedPrecisionExport",
    "compare_precision",
    "convert_fp16",
    "cpu_has_vnni",
    "export_reduced_precision",
    "gpu_provider",
    "load_image_set",
    "quantize_int8",
    "reduce_precision",
    "run_model",
    "stack_images",
]
